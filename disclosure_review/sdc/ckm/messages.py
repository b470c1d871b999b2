"""The cell key method's messages in English and Japanese (a catalogue of sdc.messages' shape)."""
from __future__ import annotations

MESSAGES: dict[str, dict[str, str]] = {
    "ptable_param_whole": {
        "en": "perturbation parameter {name} = {value}: give a whole number of at least {least}",
        "ja": "攪乱パラメータ {name} = {value}: {least} 以上の整数を指定してください",
    },
    "ptable_param_positive": {
        "en": "perturbation parameter {name} = {value}: give a positive number",
        "ja": "攪乱パラメータ {name} = {value}: 正の数を指定してください",
    },
    "ptable_param_range": {
        "en": "perturbation parameter {name} = {value}: give a number above {low} and below {high}",
        "ja": "攪乱パラメータ {name} = {value}: {low} より大きく {high} より小さい数を指定してください",
    },
    "ptable_param_choice": {
        "en": "perturbation parameter {name} = {value}: choose one of {choices}",
        "ja": "攪乱パラメータ {name} = {value}: {choices} のいずれかを指定してください",
    },
    "ptable_param_length": {
        "en": "perturbation parameter {name} has {length} values: give one, or one per row ({rows})",
        "ja": "攪乱パラメータ {name} の値が {length} 個です。1 個か、行ごとに 1 個({rows} 個)を指定してください",
    },
    "ptable_param_unknown": {
        "en": "unknown perturbation parameter(s) {names}; known: {known}",
        "ja": "不明な攪乱パラメータ {names}(使えるもの: {known})",
    },
    "ptable_nums_no_js": {
        "en": "js and pstay are count parameters: leave them out of a magnitude table (table nums)",
        "ja": "js と pstay は度数表用のパラメータです。量的表(table nums)では指定しないでください",
    },
    "ptable_cnts_no_step": {
        "en": "step and icat are magnitude parameters: leave them out of a count table (table cnts)",
        "ja": "step と icat は量的表用のパラメータです。度数表(table cnts)では指定しないでください",
    },
    "ptable_nums_points": {
        "en": "D × step = {D} × {step} must be below {limit}: lower D or step",
        "ja": "D × step = {D} × {step} は {limit} 未満にしてください。D か step を小さくしてください",
    },
    "ptable_icat": {
        "en": "icat {icat} must hold 1 and D = {D} and nothing above D",
        "ja": "icat {icat} には 1 と D = {D} を含め、D を超える値は含めないでください",
    },
    "ptable_v_too_small": {
        "en": "V = {V} is too small: with D = {D} and js = {js}, row i = {i} needs a variance of at least {least}; "
              "raise V (or lower js)",
        "ja": "V = {V} が小さすぎます。D = {D}、js = {js} では行 i = {i} に分散 {least} 以上が必要です。"
              "V を大きく(または js を小さく)してください",
    },
    "ptable_js_infeasible": {
        "en": "js = {js} leaves row i = {i} no unbiased perturbation within D = {D}: lower js or raise D",
        "ja": "js = {js} では行 i = {i} に D = {D} 以内の不偏な攪乱がありません。js を小さくするか D を大きくしてください",
    },
    "ptable_pstay_infeasible": {
        "en": "pstay = {pstay} is too large for row i = {i} (D = {D}, js = {js}): lower pstay",
        "ja": "pstay = {pstay} は行 i = {i}(D = {D}、js = {js})には大きすぎます。pstay を小さくしてください",
    },
    "ptable_unsolved": {
        "en": "row i = {i} (D = {D}, js = {js}) could not be solved ({detail}): try another V or mono",
        "ja": "行 i = {i}(D = {D}、js = {js})を解けませんでした({detail})。V か mono を変えてください",
    },
    "ptable_csv_columns": {
        "en": "the perturbation table lacks column(s) {missing}; it needs {columns}",
        "ja": "攪乱表に列 {missing} がありません。必要な列: {columns}",
    },
    "ptable_csv_value": {"en": "the perturbation table has a value that is not a number ({detail})",
                         "ja": "攪乱表に数値でない値があります({detail})"},
    "ptable_csv_empty": {"en": "the perturbation table has no rows", "ja": "攪乱表に行がありません"},
    "ckm_param_nonnegative": {
        "en": "perturbation parameter {name} = {value}: give a number of at least 0",
        "ja": "攪乱パラメータ {name} = {value}: 0 以上の数を指定してください",
    },
    "ckm_p_large": {
        "en": "p_large = {p_large} is above p_small = {p_small}: large contributions get the smaller share of noise",
        "ja": "p_large = {p_large} が p_small = {p_small} を超えています。大きな寄与ほど攪乱の割合は小さくしてください",
    },
    "ckm_epsilon": {
        "en": "epsilon {epsilon}: give top_k = {top_k} factors, the first 1, each at most the one before and above 0",
        "ja": "epsilon {epsilon}: top_k = {top_k} 個の係数を、先頭を 1 とし、0 より大きく前の値以下で指定してください",
    },
    "ptable_csv_intervals": {
        "en": "row i = {i} of the perturbation table: its intervals p_int_lb, p_int_ub must cover 0 to 1 in order, "
              "with v = j - i",
        "ja": "攪乱表の行 i = {i}: 区間 p_int_lb, p_int_ub は 0 から 1 までを順に覆い、v = j - i である必要があります",
    },
    "ckm_one_type": {
        "en": "the perturbation table holds rows of several types {types}: give one table of one type (all)",
        "ja": "攪乱表に複数の種類 {types} の行があります。1 種類(all)の表を指定してください",
    },
}
