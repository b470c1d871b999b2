"""Synthetic household survey microdata for demos, tests and benchmarks.

Modelled on Japanese official household surveys (Labour Force Survey, Family
Income and Expenditure Survey): one row per person, persons grouped in
households, households placed in a prefecture and municipality. Nothing here is
real data, but the shape is: skewed incomes with a few very large values (so
dominance rules fire), small municipalities, rare nationalities and a few
centenarians (so threshold and uniqueness checks fire), and two direct
identifiers (`name`, `phone`) that ingest must drop.

Output is deterministic for (rows, seed, chunk_rows): chunk *i* draws from
`SeedSequence(seed, spawn_key=(i,))`, so memory stays bounded by one chunk and a
10M-row file is written in a few tens of seconds.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
from tqdm import tqdm

from onsite_base.errors import UserError

log = logging.getLogger(__name__)

DEFAULT_CHUNK_ROWS = 1_000_000
JAPAN_POPULATION = 126_146_000  # 2020 census
METADATA_PATH = Path(__file__).with_name("demo_metadata.yaml")

# JIS X 0401 prefecture code -> 2020 census population (thousands); drives the sampling.
PREFECTURE_POPULATION = {
    "01": 5225, "02": 1238, "03": 1211, "04": 2302, "05": 960, "06": 1068, "07": 1833,
    "08": 2867, "09": 1933, "10": 1939, "11": 7345, "12": 6284, "13": 14048, "14": 9237,
    "15": 2201, "16": 1035, "17": 1133, "18": 767, "19": 810, "20": 2048, "21": 1979,
    "22": 3633, "23": 7542, "24": 1770, "25": 1414, "26": 2578, "27": 8838, "28": 5465,
    "29": 1324, "30": 923, "31": 553, "32": 671, "33": 1888, "34": 2800, "35": 1342,
    "36": 720, "37": 950, "38": 1335, "39": 692, "40": 5135, "41": 811, "42": 1312,
    "43": 1738, "44": 1124, "45": 1070, "46": 1588, "47": 1467,
}
PREFECTURES = np.array(list(PREFECTURE_POPULATION))

# Municipalities per prefecture: 12 cities (codes x201..), 6 towns (x3..) and 2
# villages (x5..) whose tiny weights give cells of one or two persons.
CITY_COUNT, TOWN_COUNT, VILLAGE_COUNT = 12, 6, 2
MUNICIPALITY_SUFFIXES = np.array(
    [f"{201 + i}" for i in range(CITY_COUNT)]
    + [f"{301 + 20 * i}" for i in range(TOWN_COUNT)]
    + [f"{501 + 20 * i}" for i in range(VILLAGE_COUNT)]
)
_MUNICIPALITY_WEIGHTS = np.concatenate([
    1.0 / np.arange(1, CITY_COUNT + 1) ** 1.1,  # Zipf-like city sizes
    np.full(TOWN_COUNT, 0.01),
    np.array([0.0004, 0.00005]),  # very small villages
])
_MUNICIPALITY_WEIGHTS /= _MUNICIPALITY_WEIGHTS.sum()

HOUSEHOLD_SIZE_P = np.array([0.38, 0.28, 0.16, 0.12, 0.04, 0.013, 0.005, 0.002])  # sizes 1..8
HOUSEHOLD_SIZE_P /= HOUSEHOLD_SIZE_P.sum()

# Nationality codes (see demo_metadata.yaml); 12 and 13 are deliberately rare.
NATIONALITY_P = np.array([
    0.9770, 0.0060, 0.0035, 0.0035, 0.0023, 0.0017, 0.0008, 0.0005, 0.0004, 0.0002, 0.00405, 0.00003, 0.00002,
])
NATIONALITY_P /= NATIONALITY_P.sum()

# Employment status codes 1..7 are employed; 8 unemployed; 9 not in the labour force.
EMPLOYED_STATUS_P = np.array([0.55, 0.25, 0.025, 0.045, 0.08, 0.02, 0.03])
EMPLOYED_STATUS_P /= EMPLOYED_STATUS_P.sum()

OCCUPATIONS = np.array(list("ABCDEFGHIJKL"))
OCCUPATION_P = np.array([0.02, 0.19, 0.20, 0.13, 0.12, 0.02, 0.03, 0.13, 0.04, 0.05, 0.07, 0.0])
OCCUPATION_P[-1] = 0.003
OCCUPATION_P /= OCCUPATION_P.sum()
INDUSTRIES = np.array(list("ABCDEFGHIJKLMNOPQRST"))
INDUSTRY_P = np.array([
    0.03, 0.003, 0.0003, 0.07, 0.155, 0.005, 0.039, 0.05, 0.155, 0.025,
    0.02, 0.036, 0.056, 0.035, 0.052, 0.13, 0.008, 0.068, 0.036, 0.02,
])
INDUSTRY_P /= INDUSTRY_P.sum()

SURNAMES = np.array(["佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村", "小林", "加藤",
                     "吉田", "山田", "佐々木", "山口", "松本", "井上", "木村", "林", "斎藤", "清水"])
MOBILE_PREFIXES = np.array(["070", "080", "090"])
GIVEN_NAMES = np.array(["翔太", "陽菜", "大輔", "美咲", "健一", "由美", "蓮", "結衣", "誠", "恵子",
                        "拓也", "愛", "浩", "直子", "悠真", "さくら", "修", "千尋", "学", "真由美"])


def generate(rows: int, seed: int, out: Path, *, chunk_rows: int = DEFAULT_CHUNK_ROWS, progress: bool = True) -> Path:
    """Write `rows` persons to `out` (Parquet, or CSV when `out` ends in .csv) and return `out`."""
    if rows < 1:
        raise UserError(f"--rows must be at least 1, got {rows}")
    if chunk_rows < 1:
        raise UserError(f"chunk size must be at least 1, got {chunk_rows}")
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise UserError(f"{out}: the output name must end in .parquet or .csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial")
    log.info("generating %d demo rows (seed %d) into %s", rows, seed, out)
    writer: pq.ParquetWriter | None = None
    try:
        with open(tmp, "wb") as sink, tqdm(total=rows, unit="row", unit_scale=True, disable=not progress,
                                           desc="demo data") as bar:
            first_household = first_person = 1
            for index, start in enumerate(range(0, rows, chunk_rows)):
                n = min(chunk_rows, rows - start)
                rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))
                frame = _chunk(rng, n, first_household, first_person, JAPAN_POPULATION / rows)
                first_household = int(frame["household_id"][-1]) + 1
                first_person += n
                if suffix == ".csv":
                    frame.write_csv(sink, include_header=index == 0)
                else:
                    table = frame.to_arrow()
                    writer = writer or pq.ParquetWriter(sink, table.schema, compression="zstd")
                    writer.write_table(table)
                bar.update(n)
            if writer is not None:
                writer.close()
        tmp.replace(out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out


def _pick(values: np.ndarray, index: np.ndarray) -> pl.Series:
    """`values[index]` as a polars string column (gathering in polars avoids numpy's slow str arrays)."""
    return pl.Series(values.tolist(), dtype=pl.String).gather(index)


def _chunk(rng: np.random.Generator, n: int, first_household: int, first_person: int,
           base_weight: float) -> pl.DataFrame:
    """`n` persons in whole households (the last household is cut to fit `n`)."""
    sizes = rng.choice(np.arange(1, HOUSEHOLD_SIZE_P.size + 1), size=n, p=HOUSEHOLD_SIZE_P)
    ends = np.cumsum(sizes)
    households = int(np.searchsorted(ends, n)) + 1
    sizes = sizes[:households]
    sizes[-1] -= int(ends[households - 1]) - n  # household size always equals its member count
    starts = np.cumsum(sizes) - sizes

    # Household level.
    pref_p = np.array(list(PREFECTURE_POPULATION.values()), dtype=float)
    pref_idx = rng.choice(PREFECTURES.size, size=households, p=pref_p / pref_p.sum())
    muni_idx = rng.choice(MUNICIPALITY_SUFFIXES.size, size=households, p=_MUNICIPALITY_WEIGHTS)
    urban = np.where(muni_idx < CITY_COUNT, 1, 2)
    # Households of one nationality; the second member may differ (international marriages).
    hh_nationality = rng.choice(NATIONALITY_P.size, size=households, p=NATIONALITY_P) + 1
    # Weight = persons represented, so weighted totals land near Japan's population; larger in
    # populous prefectures (small ones are oversampled in real designs), with non-response noise.
    pref_factor = (pref_p[pref_idx] / pref_p.mean()) ** 0.3
    hh_weight = base_weight * pref_factor / 1.166 * rng.lognormal(-0.03, 0.25, size=households)
    head_age = np.clip(rng.normal(np.where(sizes == 1, 62, 52), 16), 18, 99).astype(np.int16)

    # Person level.
    hh = np.repeat(np.arange(households), sizes)
    member = np.arange(n) - np.repeat(starts, sizes) + 1
    size = sizes[hh]
    age = head_age[hh].astype(np.int16)
    spouse = member == 2
    age = np.where(spouse, np.clip(age + rng.integers(-6, 4, n), 18, 99), age)
    child_age = age - rng.integers(20, 40, n)
    age = np.where(member >= 3, np.clip(child_age, 0, None), age)
    centenarian = (member == 1) & (size == 1) & (rng.random(n) < 0.004)
    age = np.where(centenarian, rng.integers(100, 109, n), age).astype(np.int16)

    sex = rng.integers(1, 3, n).astype(np.int8)
    head_sex = np.repeat(sex[member == 1], sizes)
    sex = np.where(spouse & (rng.random(n) < 0.97), 3 - head_sex, sex).astype(np.int8)

    adult = age >= 18
    married = (member <= 2) & (size >= 2) & (rng.random(n) < 0.85)
    marital = np.where(married, 2, rng.choice([1, 3, 4], size=n, p=[0.6, 0.25, 0.15]))
    marital = np.where(adult & ~married & (age < 40), np.where(rng.random(n) < 0.85, 1, 4), marital)
    marital = np.where(adult, marital, 1).astype(np.int8)

    nationality = hh_nationality[hh]
    mixed = spouse & (rng.random(n) < 0.02)
    nationality = np.where(mixed, rng.choice(NATIONALITY_P.size, size=n, p=NATIONALITY_P) + 1, nationality)

    working_age = (age >= 15) & (age < 100)
    p_employed = np.where(age < 65, 0.78, np.where(age < 75, 0.33, 0.08))
    draw = rng.random(n)
    employment = np.where(draw < p_employed, rng.choice(np.arange(1, 8), size=n, p=EMPLOYED_STATUS_P),
                          np.where(draw < p_employed + 0.02, 8, 9))
    employment = np.where(working_age, employment, 9).astype(np.int8)
    employed = employment <= 7

    occupation = rng.choice(OCCUPATIONS.size, size=n, p=OCCUPATION_P)
    industry = rng.choice(INDUSTRIES.size, size=n, p=INDUSTRY_P)

    full_time = np.isin(employment, (1, 3, 4, 5, 7))
    hours = np.where(full_time, rng.normal(43, 8, n), rng.normal(21, 9, n))
    hours = np.where(employed, np.clip(np.rint(hours), 1, 90), 0).astype(np.int16)

    # Annual income in thousand yen: log-normal by status, pensions for the old, and a
    # Pareto tail of very large incomes so cells are dominated by one contributor.
    median = np.select([employment == 7, full_time, employed], [9000, 4300, 1300], 0)
    income = median * rng.lognormal(0.0, 0.55, n)
    pension = (age >= 65) & ~employed
    income = np.where(pension, 1800 * rng.lognormal(0.0, 0.4, n), income)
    income = np.where(age < 15, 0, income)
    top = employed & (rng.random(n) < 0.0003)
    income = np.where(top, 50_000 * (1 + rng.pareto(1.2, n)), income)
    income = np.rint(np.minimum(income, 5_000_000)).astype(np.int32)

    surname = rng.integers(0, SURNAMES.size, households)[hh]
    given = rng.integers(0, GIVEN_NAMES.size, n)
    phone = rng.integers(10_000_000, 100_000_000, n)
    mobile_prefix = rng.integers(0, 3, n)

    household_id = (first_household + hh).astype(np.int64)
    return pl.DataFrame({
        "household_id": household_id,
        "person_id": np.arange(first_person, first_person + n, dtype=np.int64),
        "person_no": member.astype(np.int8),
        "name": _pick(SURNAMES, surname),
        "given": _pick(GIVEN_NAMES, given),
        "phone_prefix": _pick(MOBILE_PREFIXES, mobile_prefix),
        "phone_number": phone,
        "prefecture": _pick(PREFECTURES, pref_idx[hh]),
        "municipality_suffix": _pick(MUNICIPALITY_SUFFIXES, muni_idx[hh]),
        "urban_rural": urban[hh].astype(np.int8),
        "sex": sex,
        "age": age,
        "marital_status": marital,
        "nationality": nationality.astype(np.int16),
        "household_size": size.astype(np.int8),
        "occupation": _pick(OCCUPATIONS, occupation),
        "industry": _pick(INDUSTRIES, industry),
        "employment_status": employment,
        "annual_income": income,
        "hours_worked": hours,
        "weight": np.round(hh_weight[hh], 3),
        "employed": employed,
    }).with_columns(
        pl.when("employed").then("occupation").alias("occupation"),  # null when not employed
        pl.when("employed").then("industry").alias("industry"),
        pl.concat_str(pl.col("name"), pl.lit(" "), pl.col("given")).alias("name"),
        pl.concat_str("prefecture", "municipality_suffix").alias("municipality"),
        pl.format("{}-{}-{}", pl.col("phone_prefix"), pl.col("phone_number") // 10_000,
                  (pl.col("phone_number") % 10_000).cast(pl.String).str.zfill(4)).alias("phone"),
    ).select(
        "household_id", "person_id", "person_no", "name", "phone", "prefecture", "municipality", "urban_rural",
        "sex", "age", "marital_status", "nationality", "household_size", "occupation", "industry",
        "employment_status", "annual_income", "hours_worked", "weight",
    )
