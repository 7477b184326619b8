"""Synthetic watchlists for the demo and the benchmarks (no real person).

    python scripts/demo_data.py COUNTRY COUNT SEED > records.jsonl

Names are drawn from small per-country lists, in native script with a Latin
alias where the country uses another script; document numbers are random.
The first record of each list is fixed, so the demo can look it up.
"""

from __future__ import annotations

import json
import random
import sys

GIVEN = {
    "CN": [
        ("伟", "Wei"),
        ("芳", "Fang"),
        ("娜", "Na"),
        ("敏", "Min"),
        ("静", "Jing"),
        ("强", "Qiang"),
    ],
    "RU": [("Иван", "Ivan"), ("Ольга", "Olga"), ("Сергей", "Sergei"), ("Анна", "Anna")],
    "AR": [("José", "José"), ("María", "María"), ("Lucía", "Lucía"), ("Martín", "Martín")],
}
FAMILY = {
    "CN": [("王", "Wang"), ("李", "Li"), ("张", "Zhang"), ("刘", "Liu"), ("陈", "Chen")],
    "RU": [("Петров", "Petrov"), ("Смирнова", "Smirnova"), ("Кузнецов", "Kuznetsov")],
    "AR": [("González", "González"), ("Rodríguez", "Rodríguez"), ("Fernández", "Fernández")],
}
ICAO = {"CN": "CHN", "RU": "RUS", "AR": "ARG"}
LISTINGS = [
    ("wanted", "arrest"),
    ("missing", "locate"),
    ("entry-ban", "refuse-entry"),
    ("stolen-document", "seize-document"),
    ("surveillance", "discreet-check"),
]
FIXED = {
    "CN": ("王伟", "Wang Wei", "1980-05-17", "E12345678", "wanted", "arrest"),
    # Listed in Cyrillic only: the demo finds it with a Latin, MRZ-style query.
    "RU": ("Иван Петров", "Иван Петров", "1975-11-02", "751234567", "entry-ban", "refuse-entry"),
    "AR": ("José González", "Jose Gonzalez", "1990", "AAB123456", "missing", "locate"),
}


def person(country: str, rng: random.Random, index: int) -> dict[str, object]:
    """One synthetic record."""
    code = ICAO.get(country, "XXX")
    if index == 0 and country in FIXED:
        native, latin, dob, number, category, action = FIXED[country]
    else:
        given = rng.choice(GIVEN.get(country, GIVEN["AR"]))
        family = rng.choice(FAMILY.get(country, FAMILY["AR"]))
        native = f"{family[0]}{given[0]}" if country == "CN" else f"{given[0]} {family[0]}"
        latin = f"{family[1]} {given[1]}" if country == "CN" else f"{given[1]} {family[1]}"
        dob = f"{rng.randint(1940, 2005)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        number = f"{rng.choice('ABCDEFGHJK')}{rng.randint(10**7, 10**8 - 1)}"
        category, action = rng.choice(LISTINGS)
    names = [native] if native == latin else [native, latin]
    return {
        "id": f"{country}-{index + 1:06d}",
        "names": names,
        "dob": dob,
        "nationality": code,
        "sex": rng.choice(["M", "F"]),
        "documents": [{"type": "P", "country": code, "number": number}],
        "category": category,
        "action": action,
        "legal_basis": f"{country} watchlist act, s. {rng.randint(1, 40)}",
        "authority": f"{country} national police",
        "expires": f"{rng.randint(2027, 2035)}-12-31",
    }


def main() -> None:
    country, count, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(seed)
    out = sys.stdout
    for index in range(count):
        out.write(json.dumps(person(country, rng, index), ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
