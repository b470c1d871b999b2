"""Every check message in English and Japanese: one catalogue, keyed by message id.

A check result carries a message id (`code`) and its arguments (`args`, JSON
values); its text is rendered from here in the reader's language. English is
what the CLI, the JSON reports and the kernel show (`result.message`).

An argument may itself be a message (`msg(code, **args)`, e.g. a term like
"units", or the message of a result that protection wraps): it is rendered in
the same language, so a composed message translates as a whole. A list argument
is joined with the separator its placeholder gives as format spec
(`{findings:; }`; default ", "). Reports stored before messages had ids carry
only their English text: `result_text` falls back to it.

Another catalogue of the same shape (the review workflow's, which may name
these messages too) renders with the same functions, given as `messages`.
"""
from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

LANGUAGES = ("en", "ja")

MESSAGES: dict[str, dict[str, str]] = {
    # -- terms used inside other messages ------------------------------------------
    "units": {"en": "units", "ja": "客体"},
    "records": {"en": "records", "ja": "レコード"},
    "zero_count": {"en": "count is zero", "ja": "度数がゼロ"},
    "zero_contributions": {"en": "no contributors, or every contribution is zero", "ja": "寄与がない、またはすべての寄与がゼロ"},
    "statistic_min": {"en": "min", "ja": "最小値"},
    "statistic_max": {"en": "max", "ja": "最大値"},
    "statistic_median": {"en": "median", "ja": "中央値"},
    "statistic_mode": {"en": "mode", "ja": "最頻値"},
    "statistic_p10": {"en": "p10", "ja": "第 10 百分位数"},
    "statistic_p25": {"en": "p25", "ja": "第 25 百分位数"},
    "statistic_p75": {"en": "p75", "ja": "第 75 百分位数"},
    "statistic_p90": {"en": "p90", "ja": "第 90 百分位数"},
    "more": {"en": "… {n} more", "ja": "ほか {n} 件"},
    "verdict_pass": {"en": "pass", "ja": "合格"},
    "verdict_fail": {"en": "fail", "ja": "不合格"},
    "verdict_review": {"en": "review", "ja": "要審査"},
    # -- table checks (sdc.checks) --------------------------------------------------
    "rule_unset": {
        "en": "preset {preset!r} sets no {missing}: a reviewer must judge this rule",
        "ja": "審査基準「{preset}」に {missing} の設定がありません。審査者が判断してください",
    },
    "threshold_pass": {
        "en": "every non-empty cell has at least {threshold} contributing {who}",
        "ja": "空でないすべてのセルで、寄与する{who}が {threshold} 以上",
    },
    "threshold_fail": {
        "en": "{flagged} of {cells} cells: fewer than {threshold} contributing {who} (threshold rule: n < {threshold} fails)",
        "ja": "{cells} セル中 {flagged} セル: 寄与する{who}が {threshold} 未満(しきい値規則: n < {threshold} は不合格)",
    },
    "zeros_allowed": {
        "en": "{count} cells where {what}; zeros are not disclosive under preset {preset!r}",
        "ja": "{what}のセル {count} 個(審査基準「{preset}」ではゼロは開示リスクになりません)",
    },
    "zeros_pass": {"en": "no zero cells", "ja": "ゼロのセルなし"},
    "zeros_fail": {
        "en": "{flagged} of {cells} cells: {what} (zeros are disclosive)",
        "ja": "{cells} セル中 {flagged} セル: {what}(ゼロは開示リスクになります)",
    },
    "nk_top_n": {
        "en": "shadow statistics keep the top {top_n} contributions; the rule needs {n}",
        "ja": "影統計は上位 {top_n} 個の寄与しか保持していませんが、この規則には {n} 個必要です",
    },
    "nk_pass": {
        "en": "in every cell the largest {n} contributions are under {k:.0%} of the total",
        "ja": "すべてのセルで上位 {n} 個の寄与は合計の {k:.0%} 未満",
    },
    "nk_fail": {
        "en": "{flagged} of {cells} cells: the largest {n} contributions make up {k:.0%} or more of the total "
              "(NK rule n={n}, k={k})",
        "ja": "{cells} セル中 {flagged} セル: 上位 {n} 個の寄与が合計の {k:.0%} 以上(NK 規則 n={n}, k={k})",
    },
    "p_percent_pass": {
        "en": "in every cell the others' contributions are at least {p:.0%} of the largest",
        "ja": "すべてのセルで、上位 2 個以外の寄与が最大寄与の {p:.0%} 以上",
    },
    "p_percent_fail": {
        "en": "{flagged} of {cells} cells: total minus the two largest contributions is under {p:.0%} of the largest "
              "(p% rule, p={p})",
        "ja": "{cells} セル中 {flagged} セル: 合計から上位 2 個の寄与を除いた値が最大寄与の {p:.0%} 未満(p% 規則, p={p})",
    },
    "negatives_pass": {"en": "no negative values", "ja": "負の値なし"},
    "negatives_review": {
        "en": "{flagged} of {cells} cells: negative values; dominance rules are not defined for them, a reviewer must judge",
        "ja": "{cells} セル中 {flagged} セル: 負の値を含みます。優越性規則は負の値には定義されないため、審査者が判断してください",
    },
    "missing_unchecked": {
        "en": "missing values are not checked under preset {preset!r}",
        "ja": "審査基準「{preset}」では欠測値をチェックしません",
    },
    "missing_pass": {"en": "no missing values", "ja": "欠測値なし"},
    "missing_review": {
        "en": "{flagged} of {cells} cells: records with a missing value or weight, left out of the statistic",
        "ja": "{cells} セル中 {flagged} セル: 値またはウェイトが欠測のレコードがあり、統計量から除かれています",
    },
    "single_unit_pass": {
        "en": "no {statistic} can come from a single contributor",
        "ja": "1 つの寄与者の値そのものになりうる{statistic}はありません",
    },
    "single_unit_own": {
        "en": "{flagged} of {cells} cells: the {statistic} is one contributor's own value",
        "ja": "{cells} セル中 {flagged} セル: {statistic}は 1 つの寄与者自身の値です",
    },
    "single_unit_few": {
        "en": "{flagged} of {cells} cells: the {statistic} may be one contributor's own value "
              "(fewer than {threshold} contributors)",
        "ja": "{cells} セル中 {flagged} セル: {statistic}が 1 つの寄与者自身の値である可能性があります(寄与者が {threshold} 未満)",
    },
    "single_unit_mode_few": {
        "en": "{flagged} of {cells} cells: the {statistic} is held by fewer than {threshold} contributors, "
              "so it may be one contributor's own value",
        "ja": "{cells} セル中 {flagged} セル: {statistic}の値を持つ寄与者が {threshold} 未満のため、"
              "1 つの寄与者自身の値である可能性があります",
    },
    "single_unit_no_threshold": {
        "en": "{flagged} of {cells} cells: the {statistic} may be one contributor's own value "
              "(the preset sets no threshold)",
        "ja": "{cells} セル中 {flagged} セル: {statistic}が 1 つの寄与者自身の値である可能性があります(審査基準にしきい値がありません)",
    },
    "dof_pass": {
        "en": "every non-empty cell has at least {threshold} degrees of freedom",
        "ja": "空でないすべてのセルで自由度が {threshold} 以上",
    },
    "dof_fail": {
        "en": "{flagged} of {cells} cells: fewer than {threshold} degrees of freedom (n - 1 < {threshold})",
        "ja": "{cells} セル中 {flagged} セル: 自由度が {threshold} 未満(n - 1 < {threshold})",
    },
    "class_no_structure": {"en": "table has no row × column structure", "ja": "行×列の構造がない表です"},
    "class_pass": {
        "en": "no row or column group falls entirely in one category",
        "ja": "全体が 1 つのカテゴリに属する行・列のグループはありません",
    },
    "class_fail": {
        "en": "{flagged} of {cells} cells: all of a row (or column) group falls in this one category",
        "ja": "{cells} セル中 {flagged} セル: 行(または列)のグループ全体がこの 1 つのカテゴリに属しています",
    },
    # -- differencing -----------------------------------------------------------------
    "differencing_nothing_else": {
        "en": "the project has no other output to compare with",
        "ja": "このプロジェクトには比較する他の出力がありません",
    },
    "differencing_no_threshold": {
        "en": "preset {preset!r} sets no threshold: a reviewer must compare with the project's outputs {others!r}",
        "ja": "審査基準「{preset}」にしきい値がありません。プロジェクトの出力 {others!r} と審査者が比較してください",
    },
    "differencing_untraced": {
        "en": "the records behind this table could not be traced: a reviewer must compare it with {others!r}",
        "ja": "この表の集計対象レコードを特定できませんでした。{others!r} と審査者が比較してください",
    },
    "differencing_not_compared": {
        "en": "not compared (records not traced): {others!r}",
        "ja": "レコードを特定できず比較していない出力: {others!r}",
    },
    "differencing_pass": {
        "en": "no cell differs from a cell of {others!r} by fewer than {threshold} records",
        "ja": "{others!r} のどのセルとも、{threshold} レコード未満の差になるセルはありません",
    },
    "differencing_fail": {
        "en": "subtracting cells of the project's outputs reveals fewer than {threshold} records: {findings:; }",
        "ja": "プロジェクトの出力のセルの差し引きで {threshold} レコード未満が分かります: {findings:、}",
    },
    "differencing_cells": {
        "en": "cell {cell} of {table!r} and cell {other_cell} of {other!r} differ on {records} records",
        "ja": "「{table}」のセル {cell} と「{other}」のセル {other_cell} の差が {records} レコード",
    },
    "differencing_undecided": {
        "en": "cell {cell} of {table!r} and cell {other_cell} of {other!r} may differ on fewer than the threshold "
              "(at least {records} records): a reviewer must compare them",
        "ja": "「{table}」のセル {cell} と「{other}」のセル {other_cell} の差がしきい値未満の可能性があります"
              "(少なくとも {records} レコード)。審査者が比較してください",
    },
    "differencing_sum": {
        "en": "cell {cell} of {whole!r} minus {parts: and } leaves {records} records",
        "ja": "「{whole}」のセル {cell} から{parts:と}を引くと {records} レコードが残ります",
    },
    "differencing_sum_undecided": {
        "en": "cell {cell} of {whole!r} minus {parts: and } may leave fewer than the threshold (at least {records} "
              "records): a reviewer must compare them",
        "ja": "「{whole}」のセル {cell} から{parts:と}を引くと、しきい値未満が残る可能性があります(少なくとも "
              "{records} レコード)。審査者が比較してください",
    },
    "differencing_part_total": {"en": "the total of {output!r}", "ja": "「{output}」の総計"},
    "differencing_part_shown": {"en": "the sum of the shown cells of {output!r}", "ja": "「{output}」の公表セルの合計"},
    # -- histograms -----------------------------------------------------------------------
    "empty_bins_no_values": {"en": "no value falls in any bin", "ja": "どの階級にも値がありません"},
    "empty_bins_pass": {
        "en": "{tails} empty tail bins (allowed); {interior} empty bins between non-empty ones",
        "ja": "両端の空の階級 {tails} 個(許容)、値のある階級の間の空の階級 {interior} 個",
    },
    "empty_bins_fail": {
        "en": "{interior} empty bins between non-empty ones (zeros are disclosive): {bins:, }",
        "ja": "値のある階級の間に空の階級が {interior} 個(ゼロは開示リスクになります): {bins:、}",
    },
    "extreme_edges_unknown": {
        "en": "the data's range is unknown: a reviewer must check the outer bin edges",
        "ja": "データの範囲が不明です。審査者が外側の階級の境界を確認してください",
    },
    "extreme_edges_pass": {
        "en": "outer edges do not coincide with the smallest or largest value",
        "ja": "外側の境界はデータの最小値・最大値と一致しません",
    },
    "extreme_edges_review": {
        "en": "{revealed:; } (set edges that do not come from the data, e.g. round numbers)",
        "ja": "{revealed:、}(切りのよい数など、データに由来しない境界を設定してください)",
    },
    "lowest_edge": {"en": "lowest edge {edge:g} is the smallest value", "ja": "下端の境界 {edge:g} がデータの最小値"},
    "highest_edge": {"en": "highest edge {edge:g} is the largest value", "ja": "上端の境界 {edge:g} がデータの最大値"},
    # -- models ---------------------------------------------------------------------------
    "model_type": {
        "en": "{model} models are not checked automatically: a reviewer must judge this output",
        "ja": "{model} モデルは自動チェックの対象外です。審査者がこの出力を判断してください",
    },
    "residual_dof_unset": {
        "en": "preset {preset!r} sets no dof_threshold; n = {n}, residual degrees of freedom = {df_resid:g}",
        "ja": "審査基準「{preset}」に dof_threshold の設定がありません。n = {n}、残差自由度 = {df_resid:g}",
    },
    "residual_dof_pass": {
        "en": "{model}: n = {n}, residual degrees of freedom {df_resid:g} >= {threshold}",
        "ja": "{model}: n = {n}、残差自由度 {df_resid:g} ≥ {threshold}",
    },
    "residual_dof_fail": {
        "en": "{model}: n = {n}, residual degrees of freedom {df_resid:g} < {threshold}",
        "ja": "{model}: n = {n}、残差自由度 {df_resid:g} < {threshold}",
    },
    "parameters_unset": {
        "en": "preset {preset!r} sets no max_parameter_ratio; n = {n}, {parameters} parameters",
        "ja": "審査基準「{preset}」に max_parameter_ratio の設定がありません。n = {n}、パラメータ数 {parameters}",
    },
    "parameters_pass": {
        "en": "{model}: {parameters} parameters for n = {n} observations (at most {ratio:g} x n = {limit})",
        "ja": "{model}: 観測数 n = {n} に対してパラメータ数 {parameters}(上限 {ratio:g} × n = {limit})",
    },
    "parameters_fail": {
        "en": "{model}: {parameters} parameters for n = {n} observations, more than {ratio:g} x n = {limit}: "
              "too few observations per parameter (simplify the model or use more observations)",
        "ja": "{model}: 観測数 n = {n} に対してパラメータ数 {parameters} は上限 {ratio:g} × n = {limit} を超えます。"
              "パラメータ当たりの観測数が少なすぎます(モデルを簡単にするか観測数を増やしてください)",
    },
    "levels_none": {"en": "no categorical regressors", "ja": "カテゴリ型の説明変数はありません"},
    "levels_unset": {
        "en": "preset {preset!r} sets no threshold for categorical levels",
        "ja": "審査基準「{preset}」にカテゴリの水準のしきい値がありません",
    },
    "levels_pass": {
        "en": "every categorical level has at least {threshold} observations",
        "ja": "カテゴリのすべての水準で観測数が {threshold} 以上",
    },
    "levels_fail": {
        "en": "levels with fewer than {threshold} observations: {levels:, }",
        "ja": "観測数が {threshold} 未満の水準: {levels:、}",
    },
    "outcome_unset": {
        "en": "preset {preset!r} sets no threshold for outcome classes",
        "ja": "審査基準「{preset}」に目的変数のクラスのしきい値がありません",
    },
    "outcome_pass": {
        "en": "each outcome class has at least {threshold} observations",
        "ja": "目的変数の各クラスで観測数が {threshold} 以上",
    },
    "outcome_fail": {
        "en": "outcome classes with fewer than {threshold} observations: {classes:, }",
        "ja": "観測数が {threshold} 未満の目的変数のクラス: {classes:、}",
    },
    # -- protection (sdc.protect) wrapping a result's message --------------------------
    "excused_some_suppressed": {
        "en": "{message} ({excused} other flagged cells are suppressed)",
        "ja": "{message}(該当セルのうち {excused} 個は秘匿済み)",
    },
    "excused_some_deleted": {
        "en": "{message} ({excused} other flagged cells were deleted)",
        "ja": "{message}(該当セルのうち {excused} 個はレコードを削除済み)",
    },
    "excused_all_suppressed": {
        "en": "every flagged cell is suppressed ({message})",
        "ja": "該当セルはすべて秘匿済み({message})",
    },
    "excused_all_deleted": {
        "en": "every flagged cell was deleted ({message})",
        "ja": "該当セルはすべてレコードを削除済み({message})",
    },
    "excused_some_redacted": {
        "en": "{message} ({excused} other flagged cells are redacted)",
        "ja": "{message}(該当セルのうち {excused} 個は非表示にしました)",
    },
    "excused_all_redacted": {
        "en": "every flagged cell is redacted before rounding ({message})",
        "ja": "該当セルはすべて丸めの前に非表示にしました({message})",
    },
    "rounded": {
        "en": "{message} (rounded to base {base}: a reviewer judges whether rounding protects these cells)",
        "ja": "{message}(基数 {base} で丸めました。丸めでこれらのセルが保護されるかは審査者が判断します)",
    },
    "interval_audit": {
        "en": "{verdict}: {suppressed} suppressed cells ({statuses:, }){unsafe} (protection levels: {levels})",
        "ja": "{verdict}: 秘匿セル {suppressed} 個({statuses:、}){unsafe}(保護水準: {levels})",
    },
    "interval_status": {"en": "{n} {status}", "ja": "{status} {n} 個"},
    "interval_protected": {"en": "protected", "ja": "保護されている"},
    "interval_too_narrow": {"en": "too_narrow", "ja": "範囲が狭すぎる"},
    "interval_recomputable": {"en": "recomputable", "ja": "値を復元できる"},
    "interval_undecided": {"en": "undecided", "ja": "判定できず"},
    "interval_none": {"en": "none", "ja": "なし"},
    "unsafe_published": {"en": "; {n} unsafe cells published", "ja": "、基準を満たさないまま公表されるセル {n} 個"},
    "levels_threshold": {"en": "threshold {threshold}", "ja": "しきい値 {threshold}"},
    "levels_p_percent": {"en": "p% rule, p = {p:g}", "ja": "p% 規則, p = {p:g}"},
    "levels_explicit": {
        "en": "none set by the preset: only exact recomputation is refused",
        "ja": "審査基準に設定がないため、値の完全な復元だけを防ぎます",
    },
    "levels_not_required": {"en": "not required by the preset", "ja": "審査基準では不要"},
    # -- record-level outputs (sdc.microdata) ------------------------------------------
    "record_rules_none": {"en": "no record-level rule is configured", "ja": "個票の規則が設定されていません"},
    "input_unusable": {"en": "{error}", "ja": "データを確認できません: {error}"},
    "key_variables_none": {
        "en": "the output has none of the dataset's key variables: a reviewer must judge whether it can identify anyone",
        "ja": "出力にデータセットのキー変数がありません。個人を特定できるかどうか審査者が判断してください",
    },
    "key_variables_some": {
        "en": "checked on {present} of {declared} key variables present",
        "ja": "キー変数 {declared} 個のうち、出力にある {present} 個でチェックしました",
    },
    "weight_absent": {
        "en": "weight {weight!r} not in the output: risk computed without weights",
        "ja": "ウェイト「{weight}」が出力にないため、ウェイトなしでリスクを計算しました",
    },
    "household_absent": {"en": "household id {household!r} not in the output", "ja": "世帯 ID「{household}」は出力にありません"},
    "risk_not_computed": {"en": "the risk could not be computed: {error}", "ja": "リスクを計算できませんでした: {error}"},
    "risk_failed": {
        "en": "the risk computation failed; see the service log",
        "ja": "リスクの計算に失敗しました。サービスのログを確認してください",
    },
    "k_anonymity": {
        "en": "{records} records in key combinations of fewer than {k} records",
        "ja": "{k} レコード未満のキーの組合せに属するレコード {records} 件(k-匿名性)",
    },
    "no_weight": {"en": "no sampling weight declared", "ja": "ウェイトが宣言されていません"},
    "weighted_k_anonymity": {
        "en": "{records} records with F_k below {weighted_k}",
        "ja": "F_k が {weighted_k} 未満のレコード {records} 件",
    },
    "individual_risk": {
        "en": "{records} records with re-identification risk above {threshold}",
        "ja": "再識別リスクが {threshold} を超えるレコード {records} 件",
    },
    "global_risk": {
        "en": "global risk {risk:.4f} (threshold {threshold})",
        "ja": "全体リスク {risk:.4f}(しきい値 {threshold})",
    },
    "no_household": {"en": "no household id declared", "ja": "世帯 ID が宣言されていません"},
    "household_risk": {
        "en": "household risk {risk:.4f} (threshold {threshold})",
        "ja": "世帯リスク {risk:.4f}(しきい値 {threshold})",
    },
    "sensitive_absent": {
        "en": "sensitive variable {variable!r} not released",
        "ja": "機微変数「{variable}」は公表されません",
    },
    "l_diversity": {
        "en": "{variable}: smallest number of distinct values in a key combination {min_distinct:g}",
        "ja": "{variable}: キーの組合せ内の異なる値の最小数 {min_distinct:g}(l-多様性)",
    },
    "undeclared_variables": {
        "en": "{count} column(s) are no declared variable of the source datasets (renamed or derived): "
              "a reviewer must judge whether they identify anyone",
        "ja": "{count} 個の列は元データセットで宣言された変数ではありません(改名・加工)。個人を特定できるかどうか審査者が判断してください",
    },
    # -- tracker queries (sdc.tracker) ----------------------------------------------------
    "tracker_pass": {
        "en": "the recorded query addresses groups only: nothing singles out records by an identifying column "
              "({identifiers}), a row number, a hash, a sample or a limit",
        "ja": "記録されたクエリはグループだけを対象にしています。識別列({identifiers})、行番号、ハッシュ、標本抽出、件数制限で"
              "レコードを特定していません",
    },
    "tracker_review": {
        "en": "the recorded query addresses individual records (a tracker query): a reviewer must judge it: {findings:; }",
        "ja": "記録されたクエリが個々のレコードを指定しています(トラッカー・クエリ)。審査者が判断してください: {findings:、}",
    },
    "tracker_identifier": {"en": "identifying column {column} used in {clause}", "ja": "{clause} で識別列 {column} を使用"},
    "tracker_identifier_matched": {
        "en": "identifying column {column} matched with {other} in {clause}",
        "ja": "{clause} で識別列 {column} を {other} と照合",
    },
    "tracker_identifier_reference": {
        "en": "identifying column {column} matched in {clause} while reading reference data {tables}",
        "ja": "{clause} で識別列 {column} を照合しています(持込みデータ {tables} を読むクエリ)",
    },
    "tracker_identifier_named": {
        "en": "a computed value named {column}, an identifying column, in {clause}",
        "ja": "{clause} で計算した値に識別列の名前 {column} を付けています",
    },
    "tracker_star": {"en": "every column, identifiers too, used in {clause}", "ja": "{clause} で識別列を含む全列を使用"},
    "tracker_hash": {"en": "hash function {function}() in {clause}", "ja": "{clause} でハッシュ関数 {function}() を使用"},
    "tracker_random": {"en": "random function {function}() in {clause}", "ja": "{clause} で乱数関数 {function}() を使用"},
    "tracker_record_function": {
        "en": "{function}() in {clause} takes individual records' values",
        "ja": "{clause} の {function}() は個々のレコードの値を取り出します",
    },
    "tracker_window": {
        "en": "window function {function}() over individual records in {clause}",
        "ja": "{clause} でレコード単位のウィンドウ関数 {function}() を使用",
    },
    "tracker_extreme": {
        "en": "a value compared in {clause} with a subquery's {function}(), which is one record's value",
        "ja": "{clause} で値をサブクエリの {function}()(1 レコードの値)と比較",
    },
    "tracker_extreme_column": {
        "en": "{column}, a min or max (one record's value), used in {clause}",
        "ja": "{clause} で最小値・最大値(1 レコードの値)である {column} を使用",
    },
    "tracker_sample": {"en": "sampling ({clause})", "ja": "標本抽出({clause})"},
    "tracker_limit": {"en": "{clause} without aggregation", "ja": "集計なしの {clause}"},
    "tracker_distinct_on": {"en": "{clause} keeps one record per group", "ja": "{clause} はグループごとに 1 レコードを残します"},
    "tracker_positional_join": {
        "en": "a positional join in {clause} pairs records by their order",
        "ja": "{clause} の位置による結合(POSITIONAL JOIN)はレコードを順序で対応付けます",
    },
    "tracker_unparsed": {
        "en": "the query is not one SELECT statement the parser can read",
        "ja": "クエリを 1 つの SELECT 文として解析できません",
    },
    "tracker_table_function": {
        "en": "table function {function}() in {clause}: the check cannot see what it reads",
        "ja": "{clause} のテーブル関数 {function}() は、何を読むかをこのチェックで確認できません",
    },
    "tracker_undescribed": {
        "en": "dataset {dataset} has no metadata: its identifying columns are unknown",
        "ja": "データセット {dataset} にメタデータがなく、識別列が分かりません",
    },
    "tracker_unknown": {"en": "{what} in {clause} is not known to the check", "ja": "{clause} の {what} はこのチェックで解釈できません"},
}


def msg(code: str, **args: Any) -> dict[str, Any]:
    """A message as an argument of another message (JSON, like the result's own `code` and `args`)."""
    if code not in MESSAGES:
        raise KeyError(f"no message {code!r} in sdc.messages")
    return {"code": code, "args": args}


Catalogue = Mapping[str, Mapping[str, str]]


class _Formatter(string.Formatter):
    """str.format in one language: message arguments rendered, lists joined by the placeholder's spec."""

    def __init__(self, lang: str, messages: Catalogue) -> None:
        self.lang = lang
        self.messages = messages

    def format_field(self, value: Any, format_spec: str) -> str:
        if isinstance(value, Mapping) and "code" in value:
            return render(value["code"], value.get("args") or {}, self.lang, self.messages)
        if isinstance(value, list):
            return (format_spec or ", ").join(self.format_field(item, "") for item in value)
        return format(value, format_spec)


def render(code: str, args: Mapping[str, Any], lang: str = "en", messages: Catalogue = MESSAGES) -> str:
    """Message `code` with `args` in `lang` ("en" or "ja"); KeyError for an unknown id or argument."""
    return _Formatter(lang, messages).vformat(messages[code][lang], (), args)


def render_text(code: str | None, args: Mapping[str, Any], lang: str = "en", fallback: str | None = None,
                messages: Catalogue = MESSAGES) -> str:
    """The message in `lang`, or `fallback` (a stored English text) when the id is missing or its arguments no
    longer fit the catalogue (a report stored by another version)."""
    if code in messages:
        try:
            return render(code, args, lang, messages)
        except (KeyError, IndexError, ValueError, TypeError):
            pass
    return fallback if fallback is not None else str(code)


def message_text(message: Mapping[str, Any] | None, lang: str = "en", fallback: str | None = None,
                 messages: Catalogue = MESSAGES) -> str:
    """A stored message ({"code", "args", …}; None when stored without one) in `lang`, else `fallback`."""
    message = message or {}
    return render_text(message.get("code"), message.get("args") or {}, lang, fallback, messages)


def result_text(result: Mapping[str, Any], lang: str = "en") -> str:
    """A stored check result's ({"code", "args", "message", …}) message in `lang`."""
    return message_text(result, lang, result.get("message"))


class Described:
    """A result whose text comes from the catalogue: needs `code` and `args`; `fallback` for stored ones."""

    code: str | None
    args: Mapping[str, Any]
    fallback: str | None = None

    @property
    def message(self) -> str:
        """The English text (CLI, JSON, kernel)."""
        return self.text("en")

    def text(self, lang: str = "en") -> str:
        return render_text(self.code, self.args, lang, self.fallback)
