"""Knowledge-capture benchmarks (issue 3, "Speed") on a process with 1,000,000 cases, 100,000 open.

`bench_cases(data)` runs this file in a subprocess, because Django must see ORCHCAP_DATA_DIR before
`django.setup()`; the subprocess prints its progress and writes its results as JSON.

Loading a million cases through `create_cases` would take most of the time budget, so they are
bulk-loaded with SQL on a throwaway embedded PostgreSQL (fsync off while loading, then restarted
with the shipped settings for the measurements):

- embeddings are composed in numpy the way the app's hashing embeddings are (`HashingEmbeddings`:
  one signed, weighted hashed vector per token, summed over the case's text lines, L2-normalised):
  the lines that repeat across cases (vendor, currency, PO match, days overdue, invoice date, note,
  exception) are embedded once with the app's own tokeniser, and the two lines unique to a case
  (invoice number, amount) add their tokens' random signed spikes; so neighbourhoods look like the
  real ones (cases of the same vendor and exception cluster, with many near ties);
- they go into a staging table by binary COPY with the case's category indices, and
  `INSERT … SELECT … FROM generate_series` turns them into cases with plausible JSONB fields, then
  one imported decision per decided case;
- the secondary indexes are dropped before the load and recreated after it with their own
  definitions (`pg_get_indexdef`), the HNSW one included, so the schema is exactly the migrated one.

Measured (server-side, in process, no HTTP): `claim_next_case` with 20 colleagues holding cases and
a few skipped ones, each claim released again so every call sees the same state; `similar_cases`
top-5 latency and recall@10 against an exact search (`SET LOCAL enable_indexscan = off`, ties by
distance count as hits), at a few `hnsw.ef_search` values; `create_cases(embed=False)` with
10,000-row batches; `stream_export` as CSV and JSONL.

BENCH_CASES=100000 runs a smaller version (the open share stays a tenth) while working on this file.
"""

import json
import os
import random
import secrets
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

from measure import REPEATS, figure

ROOT = Path(__file__).resolve().parent.parent
N_CASES = int(os.environ.get("BENCH_CASES", "1000000"))
N_OPEN = N_CASES // 10
DIM = 256
N_VENDORS = 400
N_EXPERTS = 20  # colleagues of the measured expert
QUEUE_CALLS = 300
PRECEDENT_CALLS = 200
RECALL_QUERIES = 100
EF_SEARCH = (40, 100, 200)  # 40 is pgvector's default; orchcap runs with ORCHCAP_HNSW_EF_SEARCH
INTAKE_BATCHES = 5
INTAKE_BATCH = 10_000
_started = time.monotonic()


def say(message: str) -> None:
    print(f"  cases [{time.monotonic() - _started:6.1f}s] {message}", flush=True)


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1]


# --- the parent side -----------------------------------------------------------------------------


def bench_cases(data: Path) -> list[dict[str, object]]:
    """Run the knowledge-capture benchmarks in a subprocess on a fresh data dir; their results."""
    out = data / "results.json"
    data.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "ORCHCAP_DATA_DIR": str(data), "DEBUG": "false"}
    env["SECRET_KEY"] = secrets.token_urlsafe(40)
    for external in ("DATABASE_URL", "CELERY_BROKER_URL"):
        env.pop(external, None)
    try:
        subprocess.run(  # noqa: S603 (this very file, our interpreter)
            [sys.executable, __file__, str(data), str(out)], env=env, cwd=ROOT, check=True
        )
        return json.loads(out.read_text())
    finally:
        from orchcap.runtime.postgres import EmbeddedPostgres

        EmbeddedPostgres(data).stop()


# --- the child side: data ------------------------------------------------------------------------

WORDS_A = ["Acme", "Nordlicht", "Brightpath", "Kessler", "Orion", "Hansa", "Alpen", "Rhein",
           "Vektor", "Delta", "Falk", "Linden", "Sonne", "Polar", "Atlas", "Meridian", "Kraft",
           "Elbe", "Greif", "Zenit"]  # fmt: skip
WORDS_B = ["Industrial Supply", "Logistics", "Software", "Consulting", "Facility Services",
           "Metals", "Electronics", "Freight", "Office Solutions", "Energy", "Packaging",
           "Chemicals", "Engineering", "Telecom", "Print", "Security", "Catering", "Tools",
           "Hydraulics", "Cleaning"]  # fmt: skip
GOODS = ["Fasteners and safety gloves", "Hydraulic pumps and spare parts", "Office paper and toner",
         "Inbound pallet freight", "Drive controllers for line 2", "Annual software licences",
         "Process consulting days", "Electricity for plant 2", "Mobile contracts",
         "Document archiving", "Cleaning of office floors", "Canteen catering",
         "Packaging film and cartons", "Steel sheet 2 mm", "Printed circuit boards",
         "Site security guards", "Forklift maintenance", "Laboratory chemicals",
         "Cable trays and conduits", "Workshop tools"]  # fmt: skip
CURRENCIES = ["EUR", "USD", "GBP"]
PO_MATCH = ["matched", "missing", "mismatch", "partial"]
DAYS = [0, 0, 0, 5, 12, 31, 45, 60, 90, 120]
SENTENCES = ["Monthly invoice.", "Received by e-mail.", "",
             "Invoice total differs from the PO by 1.2%.", "Invoice total differs from the PO by 4.8%.",
             "Goods receipt for 60% of the ordered quantity.",
             "Vendor letter: bank details changed, please pay to the new IBAN.",
             "Services billed; no framework contract on file.",
             "Reminder: resubmitted by the vendor."]  # fmt: skip
# (AP rule, weight, PO match or None for any, sentence indices)
RULES = [("duplicate", 6, None, [8]), ("bank_change", 2, None, [6]), ("new_vendor", 6, None, [0, 1, 2]),
         ("no_po_over_limit", 5, 1, [0, 1, 2]), ("recurring", 8, 1, [0, 1]), ("missing_po", 17, 1, [0, 1, 2]),
         ("within_tolerance", 9, 2, [3]), ("over_tolerance", 13, 2, [4]), ("partial", 12, 3, [5]),
         ("no_contract", 7, 0, [7]), ("overdue", 15, 0, [0, 1, 2])]  # fmt: skip
FIELDS = [
    {"name": "vendor", "type": "text", "required": True},
    {"name": "invoice_number", "type": "text", "required": True},
    {"name": "amount", "type": "money", "currency": "EUR", "required": True},
    {"name": "currency", "type": "category", "choices": CURRENCIES, "required": True},
    {"name": "po_match", "type": "category", "label": "PO match", "choices": PO_MATCH},
    {"name": "days_overdue", "type": "number"},
    {"name": "invoice_date", "type": "date", "required": True},
    {"name": "note", "type": "text"},
]
FIRST_DAY = "2025-01-01"
N_DATES = 730


def vendor_names() -> list[str]:
    return [f"{a} {b}" for b in WORDS_B for a in WORDS_A][:N_VENDORS]


class CaseVectors:
    """Embeddings composed like the app's hashing embeddings, with the choices they encode."""

    def __init__(self, seed: int = 7) -> None:
        import numpy as np

        from apps.cases.demo import AP_RULES
        from apps.cases.embeddings import HashingEmbeddings

        self.np = np
        self.rng = np.random.default_rng(seed)
        self.hashing = HashingEmbeddings()
        labels = {spec["name"]: spec.get("label") for spec in FIELDS}
        self.vendor = self._lines("Vendor", vendor_names())
        self.currency = self._lines("Currency", CURRENCIES)
        self.po = self._lines(labels["po_match"] or "", PO_MATCH)
        self.days = self._lines("Days overdue", [str(d) for d in DAYS])
        dates = np.datetime64(FIRST_DAY) + np.arange(N_DATES)
        self.date = self._lines("Invoice date", [str(d) for d in dates])
        # The note's words run across goods and sentence (bigrams), so each pair is one line.
        self.note = np.stack(
            [self._lines("Note", [f"{goods}. {s}".strip() for s in SENTENCES]) for goods in GOODS]
        )
        self.rule = np.stack(
            [
                self._raw(f"Exception: {AP_RULES[name].exception}")
                + self._raw(f"Fields at fault: {', '.join(AP_RULES[name].at_fault)}")
                for name, *_ in RULES
            ]
        )
        weights = np.array([w for _, w, _, _ in RULES], dtype=float)
        self.rule_p = weights / weights.sum()
        # A long tail of vendors: the biggest bills about 8% of the invoices, the smallest 0.07%.
        shares = 1.0 / np.arange(1, N_VENDORS + 1) ** 0.8
        self.vendor_p = shares / shares.sum()

    def _raw(self, text: str):  # type: ignore[no-untyped-def]
        """The un-normalised hashing vector of `text` (HashingEmbeddings._embed before scaling)."""
        import hashlib

        vector = self.np.zeros(DIM, dtype=self.np.float32)
        for token, weight in self.hashing._tokens(text):
            digest = hashlib.blake2b(token.encode(), digest_size=8).digest()
            index = int.from_bytes(digest[:4], "little") % DIM
            vector[index] += (1.0 if digest[4] & 1 else -1.0) * weight
        return vector

    def _lines(self, label: str, values: list[str]):  # type: ignore[no-untyped-def]
        return self.np.stack([self._raw(f"{label}: {value}") for value in values])

    def chunk(self, start: int, count: int) -> dict:
        """Choices and unit vectors for cases start+1 … start+count."""
        np, rng = self.np, self.rng
        rule = rng.choice(len(RULES), size=count, p=self.rule_p)
        vendor = rng.choice(N_VENDORS, size=count, p=self.vendor_p)
        po = rng.integers(0, len(PO_MATCH), size=count)
        sentence = np.zeros(count, dtype=np.int64)
        for index, (_, _, forced_po, sentences) in enumerate(RULES):
            mask = rule == index
            if forced_po is not None:
                po[mask] = forced_po
            sentence[mask] = rng.choice(sentences, size=int(mask.sum()))
        days = rng.integers(0, 5, size=count)
        days[rule == [name for name, *_ in RULES].index("overdue")] += 5
        currency = rng.choice(3, size=count, p=[0.8, 0.12, 0.08])
        date = rng.integers(0, N_DATES, size=count)
        vectors = (
            self.vendor[vendor] + self.currency[currency] + self.po[po] + self.days[days]
            + self.date[date] + self.note[vendor % len(GOODS), sentence] + self.rule[rule]
        )  # fmt: skip
        # Invoice number and amount are unique per case: two tokens each ("invoice number=…"
        # weighs 3, the bare value 1), landing on hashed dimensions with hashed signs.
        rows = np.repeat(np.arange(count), 4)
        dims = rng.integers(0, DIM, size=4 * count)
        spikes = np.tile(np.array([3.0, 1.0, 3.0, 1.0], dtype=np.float32), count)
        np.add.at(vectors, (rows, dims), spikes * rng.choice([-1.0, 1.0], size=4 * count))
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        amount = np.round(np.clip(rng.lognormal(7.6, 1.3, size=count), 20, 250_000), 2)
        return {"id": np.arange(start + 1, start + count + 1), "vendor": vendor, "rule": rule,
                "po": po, "currency": currency, "days": days, "date": date, "sentence": sentence,
                "amount": amount, "v": vectors}  # fmt: skip


def copy_vectors(conn, total: int) -> None:  # type: ignore[no-untyped-def]
    """Fill the staging table bench_case(id, choices…, v vector) with binary COPY."""
    import numpy as np

    small = ["vendor", "rule", "po", "currency", "days", "date", "sentence"]
    columns = ", ".join(f"{name} smallint" for name in small)
    conn.execute(
        f"CREATE UNLOGGED TABLE bench_case (id integer, {columns}, amount float8, v vector({DIM}))"
    )
    layout = [("fields", ">i2"), ("id_len", ">i4"), ("id", ">i4")]
    for name in small:
        layout += [(f"{name}_len", ">i4"), (name, ">i2")]
    layout += [("amount_len", ">i4"), ("amount", ">f8")]
    layout += [("v_len", ">i4"), ("dim", ">i2"), ("unused", ">i2"), ("v", ">f4", (DIM,))]
    row = np.dtype(layout)
    vectors = CaseVectors()
    with conn.cursor() as cursor, cursor.copy("COPY bench_case FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0))
        for start in range(0, total, 100_000):
            part = vectors.chunk(start, min(100_000, total - start))
            rows = np.zeros(len(part["id"]), dtype=row)
            rows["fields"] = 3 + len(small)
            rows["id_len"], rows["amount_len"] = 4, 8
            rows["v_len"], rows["dim"] = 4 + 4 * DIM, DIM
            for name in small:
                rows[f"{name}_len"] = 2
            for name, values in part.items():
                rows[name] = values
            copy.write(rows.tobytes())
        copy.write(struct.pack(">h", -1))


def secondary_indexes(conn, table: str) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """(name, definition) of the indexes of `table` that back no constraint."""
    return conn.execute(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
        "JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid "
        "WHERE t.relname = %s AND NOT EXISTS (SELECT 1 FROM pg_constraint c "
        "WHERE c.conindid = x.indexrelid)",
        [table],
    ).fetchall()


def load(conn, *, process_id: int, schema_id: int, expert_ids: list[int]) -> None:  # type: ignore[no-untyped-def]
    from apps.cases.demo import AP_RULES

    begin = time.monotonic()
    copy_vectors(conn, N_CASES)
    say(f"{N_CASES:,} embeddings composed and copied in {time.monotonic() - begin:.0f}s")
    dropped = secondary_indexes(conn, "cases_case") + secondary_indexes(conn, "cases_decision")
    for name, _ in dropped:
        conn.execute(f'DROP INDEX "{name}"')
    rules = [AP_RULES[name] for name, *_ in RULES]
    # The rows are consistent by construction: skip the foreign-key triggers, whose queue of a
    # million deferred checks would cost more than the insert.
    conn.execute("SET session_replication_role = replica")
    begin = time.monotonic()
    conn.execute(
        """
        INSERT INTO cases_case (process_id, schema_version_id, external_id, fields,
            exception_reason, exception_fields, status, priority, label_count, final_label,
            final_reason_code, decided_at, is_synthetic, embedding, created_at)
        SELECT %(process)s, %(schema)s, 'INV-' || lpad(g::text, 7, '0'),
            jsonb_build_object(
                'vendor', (%(vendors)s::text[])[b.vendor + 1],
                'invoice_number', 'INV-' || lpad(g::text, 7, '0'),
                'amount', round(b.amount::numeric, 2),
                'currency', (%(currencies)s::text[])[b.currency + 1],
                'po_match', (%(po)s::text[])[b.po + 1],
                'days_overdue', (%(days)s::int[])[b.days + 1],
                'invoice_date', (%(first_day)s::date + b.date)::text,
                'note', trim((%(goods)s::text[])[b.vendor %% %(n_goods)s + 1] || '. '
                             || (%(sentences)s::text[])[b.sentence + 1])),
            (%(reasons)s::text[])[b.rule + 1],
            (%(at_fault)s::jsonb) -> b.rule,
            CASE WHEN is_open THEN 'open' ELSE 'decided' END,
            b.amount,
            CASE WHEN is_open THEN 0 ELSE 1 END,
            CASE WHEN is_open THEN '' ELSE (%(labels)s::text[])[b.rule + 1] END,
            CASE WHEN is_open THEN '' ELSE (%(codes)s::text[])[b.rule + 1] END,
            CASE WHEN is_open THEN NULL ELSE arrived + (g %% 72) * interval '1 hour' END,
            true, b.v, arrived
        FROM generate_series(1, %(total)s) AS g
        JOIN bench_case b ON b.id = g,
        LATERAL (SELECT g > %(total)s - %(open)s AS is_open,
                        now() - (%(total)s - g) * interval '30 seconds' AS arrived) AS t
        """,
        {
            "process": process_id,
            "schema": schema_id,
            "vendors": vendor_names(),
            "currencies": CURRENCIES,
            "po": PO_MATCH,
            "days": DAYS,
            "first_day": FIRST_DAY,
            "goods": GOODS,
            "n_goods": len(GOODS),
            "sentences": SENTENCES,
            "reasons": [rule.exception for rule in rules],
            "at_fault": json.dumps([list(rule.at_fault) for rule in rules]),
            "labels": [rule.label for rule in rules],
            "codes": [rule.reason_code for rule in rules],
            "total": N_CASES,
            "open": N_OPEN,
        },
    )
    say(f"{N_CASES:,} cases inserted in {time.monotonic() - begin:.0f}s")
    begin = time.monotonic()
    conn.execute(
        """
        INSERT INTO cases_decision (case_id, expert_id, label, reason_code, rationale,
            key_factors, seconds_spent, source, decided_at)
        SELECT c.id, (%(experts)s::bigint[])[c.id %% %(n)s + 1], c.final_label,
            c.final_reason_code, 'As the policy says: ' || c.exception_reason || '.', '[]',
            20 + c.id %% 200, 'import', c.decided_at
        FROM cases_case c WHERE c.process_id = %(process)s AND c.status = 'decided'
        """,
        {"experts": expert_ids, "n": len(expert_ids), "process": process_id},
    )
    conn.execute("DROP TABLE bench_case")
    conn.execute("SET session_replication_role = DEFAULT")
    say(f"{N_CASES - N_OPEN:,} decisions inserted in {time.monotonic() - begin:.0f}s")
    # Enough memory for the HNSW graph of a million vectors; one worker beside the leader on
    # two cores.
    conn.execute("SET maintenance_work_mem = '3GB'")
    conn.execute("SET max_parallel_maintenance_workers = 1")
    for name, definition in sorted(dropped, key=lambda item: "hnsw" in item[1].lower()):
        begin = time.monotonic()
        conn.execute(definition)
        say(f"index {name} rebuilt in {time.monotonic() - begin:.0f}s")
    begin = time.monotonic()
    conn.execute("VACUUM (ANALYZE) cases_case")
    conn.execute("VACUUM (ANALYZE) cases_decision")
    say(f"vacuum analyze in {time.monotonic() - begin:.0f}s")


# --- the child side: measurements -----------------------------------------------------------------


def bench_queue(process, expert, colleagues) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    from apps.cases.services.queue import claim_next_case, release_claim, skip_case

    # A working team: colleagues hold the most urgent cases, the expert skipped a few of the rest.
    for colleague in colleagues:
        claim_next_case(process=process, expert=colleague)
    for _ in range(10):
        skip_case(case=claim_next_case(process=process, expert=expert), expert=expert)
    from django.db import connection

    for _ in range(20):  # the first calls warm the caches
        release_claim(case=claim_next_case(process=process, expert=expert), expert=expert)
    rounds, bare = [], []
    for _ in range(REPEATS):
        samples, select1 = [], []
        for _ in range(QUEUE_CALLS):
            begin = time.perf_counter()
            case = claim_next_case(process=process, expert=expert)
            samples.append((time.perf_counter() - begin) * 1000)
            release_claim(case=case, expert=expert)  # the same state for every call
            begin = time.perf_counter()
            with connection.cursor() as cursor:  # the database round trip it can't beat
                cursor.execute("SELECT 1")
                cursor.fetchone()
            select1.append((time.perf_counter() - begin) * 1000)
        rounds.append(p95(samples))
        bare.append(p95(select1))
        say(
            f"next case: p50 {statistics.median(samples):.2f} ms, p95 {rounds[-1]:.2f} ms "
            f"over {len(samples)} calls (SELECT 1 p95 {bare[-1]:.3f} ms)"
        )
    return [
        figure("cases_next_case_p95", rounds, "ms", 25.0, "lower",
               baseline=("select1_p95", bare)),
    ]  # fmt: skip


def _set_ef_search(value: int) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SET hnsw.ef_search = {int(value)}")


def bench_precedents(process) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    from django.db import connection, transaction

    from apps.cases.models import Case, CaseStatus
    from apps.cases.services.similarity import similar_cases

    open_ids = list(
        Case.objects.filter(process=process, status=CaseStatus.OPEN).values_list("pk", flat=True)
    )
    picks = random.Random(3).sample(open_ids, PRECEDENT_CALLS)
    queries = list(Case.objects.filter(pk__in=picks))
    plan = similar_cases(case=queries[0], k=5).explain()
    say(
        "precedents plan uses the HNSW index: " + ("yes" if "case_embedding_hnsw" in plan else "NO")
    )
    exact: dict[int, list[float]] = {}
    begin = time.monotonic()
    for case in queries[:RECALL_QUERIES]:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL enable_indexscan = off")
            exact[case.pk] = [n.distance for n in similar_cases(case=case, k=10)]
    say(
        f"exact top-10 for {RECALL_QUERIES} cases: "
        f"{(time.monotonic() - begin) / RECALL_QUERIES:.2f} s each"
    )
    vectors = {c.pk: "[" + ",".join(f"{float(x):.7g}" for x in c.embedding) + "]" for c in queries}
    figures = {}
    for ef in EF_SEARCH:
        _set_ef_search(ef)
        for case in queries[:20]:  # warm-up
            list(similar_cases(case=case, k=5))
        latencies, bare = [], []
        for _ in range(REPEATS):
            samples, plain = [], []
            for case in queries:
                begin_call = time.perf_counter()
                list(similar_cases(case=case, k=5))
                samples.append((time.perf_counter() - begin_call) * 1000)
                begin_call = time.perf_counter()
                with connection.cursor() as cursor:  # bare pgvector: the index, nothing else
                    cursor.execute(
                        "SELECT id FROM cases_case ORDER BY embedding <=> %s::vector LIMIT 5",
                        [vectors[case.pk]],
                    )
                    cursor.fetchall()
                plain.append((time.perf_counter() - begin_call) * 1000)
            latencies.append(p95(samples))
            bare.append(p95(plain))
        recalls = []
        for case in queries[:RECALL_QUERIES]:
            tenth = exact[case.pk][-1]
            found = [n.distance for n in similar_cases(case=case, k=10)]
            # Many cases tie on distance: any case as close as the exact 10th is a right answer.
            recalls.append(sum(d <= tenth + 1e-9 for d in found) / 10)
        # Recall is deterministic for a query: its spread is over REPEATS groups of queries.
        groups = [statistics.mean(recalls[i::REPEATS]) for i in range(REPEATS)]
        figures[ef] = (latencies, bare, groups)
        say(
            f"precedents at hnsw.ef_search={ef}: p95 {statistics.median(latencies):.2f} ms "
            f"(bare pgvector {statistics.median(bare):.2f} ms), "
            f"recall@10 {statistics.mean(recalls):.3f}"
        )
    from django.conf import settings

    configured = settings.ORCHCAP_HNSW_EF_SEARCH
    _set_ef_search(configured)
    # The headline figures are at the ef_search the app runs with; the others are the sweep.
    results = []
    for ef in sorted(EF_SEARCH, key=lambda e: e != configured):
        latency, bare, recall = figures[ef]
        suffix = "" if ef == configured else f"_ef{ef}"
        results += [
            figure(f"cases_precedents_top5_p95{suffix}", latency, "ms", 15.0, "lower",
                   baseline=("pgvector_order_by_limit_5_p95", bare)),
            figure(f"cases_precedents_recall_at_10{suffix}", recall, "ratio", 0.95, "higher"),
        ]  # fmt: skip
    return results


def intake_rows(batch: int, rng: random.Random) -> list[dict]:
    from apps.cases.demo import AP_RULES

    vendors = vendor_names()
    rows = []
    for index in range(INTAKE_BATCH):
        name, _, po, sentences = rng.choices(RULES, weights=[w for _, w, _, _ in RULES])[0]
        vendor = rng.randrange(len(vendors))
        rule = AP_RULES[name]
        note = f"{GOODS[vendor % len(GOODS)]}. {SENTENCES[rng.choice(sentences)]}".strip()
        rows.append(
            {
                "external_id": f"NEW-{batch}-{index:05d}",
                "fields": {
                    "vendor": vendors[vendor],
                    "invoice_number": f"NEW-{batch}-{index:05d}",
                    "amount": round(rng.lognormvariate(7.6, 1.3), 2),
                    "currency": rng.choice(CURRENCIES),
                    "po_match": PO_MATCH[po if po is not None else rng.randrange(4)],
                    "days_overdue": rng.choice(DAYS),
                    "invoice_date": f"2026-0{rng.randint(1, 9)}-{rng.randint(10, 28)}",
                    "note": note,
                },
                "exception": {"reason": rule.exception, "fields": list(rule.at_fault)},
            }
        )
    return rows


def bench_intake(process) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    from apps.cases.services.intake import create_cases

    rng = random.Random(11)
    rates = []
    for batch in range(max(INTAKE_BATCHES, REPEATS)):  # each batch is a run
        rows = intake_rows(batch, rng)
        begin = time.perf_counter()
        created = create_cases(process=process, rows=rows, embed=False).created_count
        took = time.perf_counter() - begin
        assert created == len(rows)
        rates.append(len(rows) / took)
        say(f"intake batch {batch + 1}/{INTAKE_BATCHES}: {rates[-1]:,.0f} cases/s")
    return [figure("cases_batch_intake_rate", rates, "cases/s", 5000.0, "higher")]


def bench_export(process) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    from django.db import connection

    from apps.cases.models import Case
    from apps.cases.services.export import stream_export

    total = Case.objects.filter(process=process).count()

    def copy_rate() -> float:
        """The bare library: PostgreSQL's own CSV of the same rows (COPY … TO STDOUT)."""
        connection.ensure_connection()
        begin = time.perf_counter()
        rows = 0
        with (
            connection.connection.cursor() as cursor,
            cursor.copy(
                "COPY (SELECT id, external_id, status, final_label, fields, exception_reason, "
                "created_at FROM cases_case WHERE process_id = %s ORDER BY id) "
                "TO STDOUT WITH (FORMAT csv, HEADER)",
                [process.pk],
            ) as copy,
        ):
            for chunk in copy:
                rows += bytes(chunk).count(b"\n")
        took = time.perf_counter() - begin
        return (rows - 1) / took

    bare = []
    results = []
    for fmt in ("csv", "jsonl"):
        rates = []
        for _ in range(REPEATS):
            begin = time.perf_counter()
            lines = sum(chunk.count("\n") for chunk in stream_export(process=process, fmt=fmt))
            took = time.perf_counter() - begin
            rows = lines - (1 if fmt == "csv" else 0)
            assert rows == total, f"{fmt} export has {rows} rows for {total} cases"
            rates.append(rows / took)
            if len(bare) < REPEATS:
                bare.append(copy_rate())
            say(f"export {fmt}: {rows:,} rows in {took:.1f}s, {rates[-1]:,.0f} rows/s "
                f"(COPY TO STDOUT {bare[-1]:,.0f} rows/s)")  # fmt: skip
        results.append(figure(f"cases_export_{fmt}_rate", rates, "rows/s", 50000.0, "higher",
                              baseline=("copy_to_stdout_csv_rate", bare)))  # fmt: skip
    return results


def bench_backtest(process, owner) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    """A rule's backtest over every decided case of the process (about 900,000 here)."""
    from apps.rules.services.authoring import create_rule
    from apps.rules.services.backtest import backtest_condition

    condition = {
        "all": [
            {"field": "po_match", "op": "eq", "value": "missing"},
            {"field": "amount", "op": "gt", "value": 10000},
        ]
    }
    action = {"decide": "route_to_procurement", "reason_code": "no_po_over_limit"}
    create_rule(
        process=process, owner=owner, name="No PO over limit", condition=condition, action=action
    )
    from django.db import connection

    def bare_scan() -> None:  # one pass over the same rows: the floor for any backtest
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*), count(*) FILTER (WHERE final_label = 'x') FROM cases_case "
                "WHERE process_id = %s AND status = 'decided'",
                [process.pk],
            )
            cursor.fetchone()

    timings, bare = [], []
    for _ in range(max(5, REPEATS)):
        begin = time.perf_counter()
        stats = backtest_condition(process=process, condition=condition, action=action)
        timings.append(time.perf_counter() - begin)
        begin = time.perf_counter()
        bare_scan()
        bare.append(time.perf_counter() - begin)
    say(
        f"backtest over {stats['decided_cases']:,} decided cases: median {statistics.median(timings):.2f} s, "
        f"worst {max(timings):.2f} s (coverage {stats['coverage']:.3f}, precision {stats['precision']:.3f}); "
        f"a bare count over the decided cases {statistics.median(bare):.2f} s"
    )
    return [
        figure("rules_backtest_1m_decided", timings, "s", 2.0, "lower",
               baseline=("count_decided_cases", bare)),
    ]  # fmt: skip


def child(data: Path, out: Path) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchcap.settings")
    from orchcap.runtime.postgres import EmbeddedPostgres

    # fsync off for loading only; the measurements run on a server restarted with the shipped
    # settings.
    EmbeddedPostgres(data, fast=True).ensure_running()
    import django

    django.setup()
    import psycopg
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connections

    from apps.cases.demo import AP_DECISIONS
    from apps.cases.services.processes import create_process
    from apps.people.models import Role
    from apps.people.services import add_member, create_team

    call_command("migrate", verbosity=0)
    say(f"migrated; building a process with {N_CASES:,} cases ({N_OPEN:,} open)")
    team = create_team(slug="bench", name="Bench")
    users = [get_user_model().objects.create(username=f"expert{i}") for i in range(N_EXPERTS + 1)]
    for user in users:
        add_member(team=team, user=user, role=Role.EXPERT)
    process = create_process(
        team=team, name="Invoice exceptions", slug="bench-invoices", fields=FIELDS,
        decisions=AP_DECISIONS, minutes_per_case=6, overlap=1, priority_field="amount",
    )  # fmt: skip
    with psycopg.connect(**EmbeddedPostgres(data).connection_kwargs(), autocommit=True) as conn:
        load(
            conn,
            process_id=process.pk,
            schema_id=process.schema_id,
            expert_ids=[u.pk for u in users],
        )
    connections.close_all()
    EmbeddedPostgres(data).stop()
    EmbeddedPostgres(data).ensure_running()
    say("restarted with the shipped settings (fsync on); measuring")
    results = bench_queue(process, users[0], users[1:])
    results += bench_precedents(process)
    results += bench_backtest(process, users[0])
    results += bench_intake(process)
    results += bench_export(process)
    out.write_text(json.dumps(results))


if __name__ == "__main__":
    child(Path(sys.argv[1]), Path(sys.argv[2]))
