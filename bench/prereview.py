"""智能预审: how well and how fast photos of documents are read (app/prereview).

    .venv/bin/python bench/prereview.py [--per-level 100] [--seed 2026]
        [--levels none,moderate,heavy] [--threads 1] [--cores 1] [--side 1280]
        [--det-side 960] [--show-misses]

The set is bench/prereview_set.py's (drawn in code, the same for the same seed): at each
level of spoiling, of each 25 photos 8 are ID card fronts, 8 backs, 2 household-register
pages, 2 other papers, 2 disability certificates, 2 bank cards and 1 passbook. Each photo
is read once with `read_document` (its own decode included) in this process, pinned to
`--cores` cores with ONNX Runtime on `--threads` threads, after one warm-up read. Then
every reading is checked as each material it could have been given as, on the set's day
(prereview_set.ON_DATE):

- **kind**: the kind read is the kind drawn; "unreadable" is any photo read as such.
- **number exact / name exact**: on fronts, the number (as printed, a wrong check digit
  included) and the name read exactly; "of readable" counts only the fronts not read as
  unreadable.
- **wrong document caught**: every photo checked as each of 身份证正面, 身份证反面, 户口簿,
  残疾人证 and 银行卡 that it is not (a passbook serves as a bank card); caught when the check
  says wrong_side or wrong_document.
- **expired caught**: backs whose period has ended, checked as backs: `expired` found. A
  back still valid with `expired` is a false expiry.
- **someone else's number**: fronts with a valid number checked against another person's
  number: `id_number_mismatch` found. **Wrong check digit**: fronts printed with one,
  checked against their own: `id_number_invalid` found.
- **disability certificates**: number (20 digits), name, category and grade all exact;
  expired ones checked as such: `expired` found. **Bank cards and passbooks**: the number
  exact; cards printed with a wrong Luhn digit: `account_number_invalid` found; a
  passbook's name (户名) exact.
- **false alarms**: the good photos (the kind asked for, a valid number, the person's own,
  not expired) checked as what they are, with the person's number and name: any finding at
  all is a false alarm.
- **seconds**: per photo, mean and 95th percentile; **peak RSS**: the process's peak
  resident memory while the level was read (engine loaded), and its growth over the
  resident memory before the level.
Goals (moderate): number and name exact >= 97 % of readable fronts, wrong document caught
>= 98 %, false alarms <= 2 %, <= 1.5 s a photo on one core.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import prereview_set as dataset

from app.prereview import check, open_engine, read_document
from app.prereview import reading as reading_module
from app.prereview.checks import ACCEPTS, ExpectedKind
from app.prereview.engine import DET_SIDE, Engine
from app.prereview.reading import Reading

EXPECTABLE: tuple[ExpectedKind, ...] = (
    "id_card_front",
    "id_card_back",
    "hukou_page",
    "disability_card",
    "bank_card",
)


def memory_kib() -> dict[str, int]:
    found = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0])
    return found


def reset_peak() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


@dataclass
class Tally:
    hits: int = 0
    total: int = 0

    def add(self, hit: bool) -> None:
        self.hits += bool(hit)
        self.total += 1

    def __str__(self) -> str:
        if not self.total:
            return "-"
        return f"{100 * self.hits / self.total:5.1f}% ({self.hits}/{self.total})"


@dataclass
class Level:
    name: str
    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    kind: Tally = field(default_factory=Tally)
    unreadable: Tally = field(default_factory=Tally)
    number: Tally = field(default_factory=Tally)
    name_exact: Tally = field(default_factory=Tally)
    number_readable: Tally = field(default_factory=Tally)
    name_readable: Tally = field(default_factory=Tally)
    address: Tally = field(default_factory=Tally)
    back_fields: Tally = field(default_factory=Tally)
    wrong_caught: Tally = field(default_factory=Tally)
    expired: Tally = field(default_factory=Tally)
    false_expired: Tally = field(default_factory=Tally)
    mismatch: Tally = field(default_factory=Tally)
    invalid: Tally = field(default_factory=Tally)
    false_alarm: Tally = field(default_factory=Tally)
    disability_fields: Tally = field(default_factory=Tally)
    disability_expired: Tally = field(default_factory=Tally)
    account: Tally = field(default_factory=Tally)
    account_invalid: Tally = field(default_factory=Tally)
    passbook_name: Tally = field(default_factory=Tally)
    repaired: int = 0
    peak_kib: int = 0
    growth_kib: int = 0
    alarms: Counter[str] = field(default_factory=Counter)
    misses: list[str] = field(default_factory=list)


def score(level: Level, sample: dataset.Sample, reading: Reading, other_number: str) -> None:
    person = sample.person
    assert person is not None
    kind = sample.kind
    level.kind.add(reading.kind == kind)
    level.unreadable.add(reading.kind == "unreadable")
    if reading.kind != kind:
        level.misses.append(f"{sample.name}: kind {reading.kind} | {' / '.join(reading.lines)}")
    day = dataset.ON_DATE
    for expected in EXPECTABLE:
        if expected != kind and kind not in ACCEPTS.get(expected, ()):
            codes = {f.code for f in check(reading, expected, person.id_number, day)}
            level.wrong_caught.add(bool(codes & {"wrong_side", "wrong_document"}))
    if kind == "id_card_front":
        readable = reading.kind != "unreadable"
        level.number.add(reading.id_number == person.id_number)
        level.name_exact.add(reading.name == person.name)
        if readable:
            level.number_readable.add(reading.id_number == person.id_number)
            level.name_readable.add(reading.name == person.name)
        level.address.add(reading.address == person.address)
        level.repaired += reading.id_number_repaired
        if reading.kind == kind and (
            reading.id_number != person.id_number or reading.name != person.name
        ):
            level.misses.append(
                f"{sample.name}: {reading.name} {reading.id_number} (drawn {person.name} "
                f"{person.id_number}) | {' / '.join(reading.lines)}"
            )
        if person.id_valid:
            codes = {f.code for f in check(reading, kind, other_number, day)}
            level.mismatch.add("id_number_mismatch" in codes)
        else:
            codes = {f.code for f in check(reading, kind, person.id_number, day)}
            level.invalid.add("id_number_invalid" in codes)
    if kind == "id_card_back":
        codes = {f.code for f in check(reading, kind, None, day)}
        (level.expired if sample.expired else level.false_expired).add("expired" in codes)
        right = (
            reading.authority == person.authority
            and reading.valid_from == person.valid_from
            and reading.valid_until == person.valid_until
            and reading.long_term == (person.valid_until is None)
        )
        level.back_fields.add(right)
        if reading.kind == kind and not right:
            level.misses.append(
                f"{sample.name}: {reading.authority} {reading.valid_from}-{reading.valid_until}"
                f"{' 长期' if reading.long_term else ''} (drawn {person.authority} "
                f"{dataset.validity_text(person)}) | {' / '.join(reading.lines)}"
            )
    if kind == "disability_card":
        right = (
            reading.disability_number == dataset.disability_number(person)
            and reading.name == person.name
            and reading.disability_category == person.disability_category
            and reading.disability_grade == person.disability_grade
        )
        level.disability_fields.add(right)
        codes = {f.code for f in check(reading, kind, person.id_number, day)}
        if sample.expired:
            level.disability_expired.add("expired" in codes)
        if not right and reading.kind == kind:
            level.misses.append(f"{sample.name}: {reading} | {' / '.join(reading.lines)}")
    if kind in ("bank_card", "passbook"):
        level.account.add(reading.account_number == person.account_number)
        if not person.account_valid:
            codes = {f.code for f in check(reading, "bank_card", None, day)}
            level.account_invalid.add("account_number_invalid" in codes)
        if kind == "passbook":
            level.passbook_name.add(reading.name == person.name)
    given: ExpectedKind | None = "bank_card" if kind == "passbook" else None
    if kind in EXPECTABLE:
        given = kind  # type: ignore[assignment]
    good = given is not None and person.id_valid and person.account_valid and not sample.expired
    if good and given is not None:
        findings = check(reading, given, person.id_number, day, person.name)
        level.false_alarm.add(bool(findings))
        level.alarms.update(f.code for f in findings)


def run(args: argparse.Namespace, engine: Engine) -> list[Level]:
    levels = []
    for name in args.levels:
        samples = list(dataset.samples(args.seed, args.per_level, (name,)))
        read_document(samples[0].image, engine)  # warm up
        level = Level(name)
        before = memory_kib()["VmRSS"]
        reset_peak()
        numbers = [s.person.id_number for s in samples if s.person and s.person.id_valid]
        for i, sample in enumerate(samples):
            started, cpu = time.perf_counter(), time.process_time()
            reading = read_document(sample.image, engine)
            level.seconds.append(time.perf_counter() - started)
            level.cpu.append(time.process_time() - cpu)
            score(level, sample, reading, numbers[(i + 7) % len(numbers)])
        peak = memory_kib()["VmHWM"]
        level.peak_kib, level.growth_kib = peak, peak - before
        levels.append(level)
    return levels


def table(levels: list[Level]) -> None:
    rows: list[tuple[str, list[str]]] = [
        ("photos", [str(len(lv.seconds)) for lv in levels]),
        ("kind right", [str(lv.kind) for lv in levels]),
        ("read as unreadable", [str(lv.unreadable) for lv in levels]),
        ("number exact, fronts", [str(lv.number) for lv in levels]),
        ("number exact, readable fronts", [str(lv.number_readable) for lv in levels]),
        ("name exact, fronts", [str(lv.name_exact) for lv in levels]),
        ("name exact, readable fronts", [str(lv.name_readable) for lv in levels]),
        ("address exact, fronts", [str(lv.address) for lv in levels]),
        ("numbers repaired", [str(lv.repaired) for lv in levels]),
        ("back: authority and period exact", [str(lv.back_fields) for lv in levels]),
        ("wrong document/side caught", [str(lv.wrong_caught) for lv in levels]),
        ("expired caught", [str(lv.expired) for lv in levels]),
        ("valid back said expired", [str(lv.false_expired) for lv in levels]),
        ("someone else's number caught", [str(lv.mismatch) for lv in levels]),
        ("wrong check digit caught", [str(lv.invalid) for lv in levels]),
        ("disability: number, name, category, grade", [str(lv.disability_fields) for lv in levels]),
        ("disability: expired caught", [str(lv.disability_expired) for lv in levels]),
        ("bank card/passbook: number exact", [str(lv.account) for lv in levels]),
        ("card: wrong check digit caught", [str(lv.account_invalid) for lv in levels]),
        ("passbook: name exact", [str(lv.passbook_name) for lv in levels]),
        ("false alarms, good photos", [str(lv.false_alarm) for lv in levels]),
        (
            "  of which",
            [", ".join(f"{c} {n}" for c, n in lv.alarms.most_common()) or "-" for lv in levels],
        ),
        ("seconds/photo, mean", [f"{statistics.mean(lv.seconds):.2f}" for lv in levels]),
        (
            "seconds/photo, p95",
            [f"{sorted(lv.seconds)[int(0.95 * (len(lv.seconds) - 1))]:.2f}" for lv in levels],
        ),
        ("CPU seconds/photo, mean", [f"{statistics.mean(lv.cpu):.2f}" for lv in levels]),
        (
            "CPU seconds/photo, p95",
            [f"{sorted(lv.cpu)[int(0.95 * (len(lv.cpu) - 1))]:.2f}" for lv in levels],
        ),
        (
            "peak RSS MiB (growth)",
            [f"{lv.peak_kib / 1024:.0f} (+{lv.growth_kib / 1024:.0f})" for lv in levels],
        ),
    ]
    width = max(len(label) for label, _ in rows)
    cols = [max(len(lv.name), *(len(r[1][i]) for r in rows)) for i, lv in enumerate(levels)]
    print(
        f"{'':<{width}}  "
        + "  ".join(f"{lv.name:>{c}}" for lv, c in zip(levels, cols, strict=True))
    )
    for label, values in rows:
        print(
            f"{label:<{width}}  "
            + "  ".join(f"{v:>{c}}" for v, c in zip(values, cols, strict=True))
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-level", type=int, default=100)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--levels", type=lambda s: s.split(","), default=list(dataset.LEVELS))
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime's threads")
    parser.add_argument("--cores", type=int, default=1, help="cores the process may use")
    parser.add_argument("--side", type=int, default=reading_module.MAX_SIDE)
    parser.add_argument("--det-side", type=int, default=DET_SIDE)
    parser.add_argument("--show-misses", action="store_true")
    args = parser.parse_args()
    if not dataset.have_font():
        sys.exit(f"no CJK font at {dataset.FONT_PATH}: apt-get install fonts-wqy-microhei")
    os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[: args.cores]))
    reading_module.MAX_SIDE = args.side  # type: ignore[misc]
    started = time.perf_counter()
    import_started = time.perf_counter()
    engine = open_engine(args.threads, args.det_side)
    loaded = time.perf_counter() - import_started
    if engine is None:
        sys.exit("the text recogniser is not installed: pip install -e '.[prereview]'")
    print(
        f"engine: {engine.name}, imported and loaded in {loaded:.2f} s, RSS "
        f"{memory_kib()['VmRSS'] / 1024:.0f} MiB; {args.cores} core(s), {args.threads} "
        f"thread(s); photos read at <= {args.side} px, text found at <= {args.det_side} px; "
        f"seed {args.seed}, {args.per_level} photos per level"
    )
    levels = run(args, engine)
    table(levels)
    if args.show_misses:
        for lv in levels:
            for miss in lv.misses:
                print(f"  {miss}")
    print(f"({time.perf_counter() - started:.0f} s in all)")


if __name__ == "__main__":
    main()
