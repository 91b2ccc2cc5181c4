"""Operators' audit tools: verify the archive end to end, prove one record is in it.

Theory of operation. ``verify_archive`` reads the records in leaf order, recomputes each
leaf hash from the stored record bytes (schemas.archive's encoding binds the leaf index,
so a record moved is a record changed) and checks, per record, in this order:

1. the recomputed leaf hash equals the stored one (a changed byte, or a moved row);
2. its leaf index is the next one (a hole is a deleted row);
3. its partition's offsets run on without a hole (which names a deleted record);

then every signed tree head: its Ed25519 signature by the auditor's key, its root against
the root recomputed over the *recomputed* leaves, and an RFC 6962 consistency proof from
the previous head. Someone who rewrites records and stored hashes alike still fails there,
as the heads' signatures cannot be redone without the auditor's key. Findings come in leaf
order; the first is the headline.

    report = verify_archive(path, load_directory(keys).get(AUDITOR).signing)
    report.ok, report.first  # False, Finding(leaf_index=41, origin="i247.inbound/2/17", ...)
"""

from __future__ import annotations

import argparse
import base64
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from rich.console import Console
from rich.table import Table

from brokers.archive_store import ArchiveStore, default_archive_path, require_archive
from brokers.settings import Settings
from schemas.archive import (
    ArchivedRecord,
    MerkleAccumulator,
    TreeHead,
    TreeLevels,
    sign_tree_head,
)
from schemas.keys import key_id, load_directory
from schemas.merkle import leaf_hash, verify_consistency, verify_inclusion
from schemas.participants import AUDITOR

__all__ = [
    "CONSISTENCY_FORMAT",
    "PROOF_FORMAT",
    "AuditReport",
    "Finding",
    "NotProvable",
    "bench_archive",
    "bench_command",
    "consistency_command",
    "prove_command",
    "prove_consistency",
    "prove_record",
    "verify_archive",
    "verify_command",
]

PROOF_FORMAT = "i247-inclusion-proof/1"
CONSISTENCY_FORMAT = "i247-consistency-proof/1"


class NotProvable(LookupError):
    """The record is not archived, or no signed tree head covers it yet."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing that breaks the archive: where (leaf, record) and what."""

    leaf_index: int | None
    origin: str | None
    problem: str

    def __str__(self) -> str:
        where = f"leaf {self.leaf_index}" if self.leaf_index is not None else "archive"
        return f"{where} ({self.origin or '-'}): {self.problem}"


@dataclass
class AuditReport:
    records: int = 0
    heads: int = 0
    findings: list[Finding] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def first(self) -> Finding | None:
        return self.findings[0] if self.findings else None


def verify_archive(
    path: Path, signers: Mapping[str, Ed25519PublicKey], *, max_findings: int = 20
) -> AuditReport:
    """Recompute the whole archive and check it against every stored signed tree head."""
    started = time.perf_counter()
    report = AuditReport()
    with ArchiveStore.open_reader(path) as store:
        heads = store.heads()
        report.heads = len(heads)
        last_offset: dict[tuple[str, int], int] = {}
        leaves: list[bytes] = []
        origins: list[str] = []
        tree = MerkleAccumulator()
        pending = list(reversed(heads))  # smallest size last, to pop
        roots: dict[int, bytes] = {}

        def note(finding: Finding) -> None:
            if len(report.findings) < max_findings:
                report.findings.append(finding)

        expected = 0
        unnamed_gap: int | None = None  # a missing leaf, until an offset hole names it
        for stored in store.records():
            record, index = stored.record, stored.leaf_index
            leaf = leaf_hash(stored.leaf_input())
            if leaf != stored.leaf_hash:
                changed = "changed or moved: leaf hash differs from the stored one"
                note(Finding(index, record.origin, changed))
            if index != expected:
                unnamed_gap = len(report.findings)
                note(Finding(expected, None, f"leaves {expected}..{index - 1} are missing"))
            expected = index + 1
            where = (record.topic, record.partition)
            previous = last_offset.get(where)
            if previous is None and record.offset > 0 and unnamed_gap is not None:
                # a partition's first archived record is not its offset 0: if leaves are
                # missing, the hole names them (an archive starts each partition at 0)
                gap = report.findings[unnamed_gap]
                missing = f"{record.topic}/{record.partition}/0"
                report.findings[unnamed_gap] = Finding(
                    gap.leaf_index, missing, f"{gap.problem}; {missing} missing or moved"
                )
                unnamed_gap = None
            if previous is not None and record.offset <= previous:
                note(Finding(index, record.origin, f"out of order: after offset {previous}"))
            elif previous is not None and record.offset != previous + 1:
                missing = f"{record.topic}/{record.partition}/{previous + 1}"
                jump = f"offsets jump {previous} -> {record.offset}: {missing} missing or moved"
                if unnamed_gap is not None and unnamed_gap < len(report.findings):
                    gap = report.findings[unnamed_gap]
                    report.findings[unnamed_gap] = Finding(
                        gap.leaf_index, missing, f"{gap.problem}; {jump}"
                    )
                    unnamed_gap = None
                else:
                    note(Finding(index, missing, jump))
            last_offset[where] = max(record.offset, -1 if previous is None else previous)
            leaves.append(leaf)
            origins.append(record.origin)
            tree.append(leaf)
            while pending and pending[-1].size == tree.size:
                roots[tree.size] = tree.root()
                pending.pop()
        report.records = len(leaves)
    levels = TreeLevels(leaves)
    previous_head: TreeHead | None = None
    for head in heads:
        _check_head(head, previous_head, roots, levels, origins, signers, note)
        previous_head = head
    report.seconds = time.perf_counter() - started
    return report


def _check_head(
    head: TreeHead,
    previous: TreeHead | None,
    roots: Mapping[int, bytes],
    levels: TreeLevels,
    origins: list[str],
    signers: Mapping[str, Ed25519PublicKey],
    note: Any,
) -> None:
    first = 0 if previous is None else previous.size
    blame = origins[first] if first < len(origins) else None
    signer = signers.get(head.key_id)
    if signer is None or not head.verify(signer):
        note(Finding(None, None, f"tree head of size {head.size}: signature is not the auditor's"))
    if head.size > levels.size:
        note(
            Finding(
                levels.size,
                None,
                f"tree head of size {head.size} covers leaves the archive no longer has "
                f"(it holds {levels.size}): records from leaf {levels.size} deleted",
            )
        )
        return
    if roots.get(head.size) != head.root:
        note(
            Finding(
                first,
                blame,
                f"tree head of size {head.size}: root differs; a record in leaves "
                f"{first}..{head.size - 1} was changed",
            )
        )
    if previous is not None and previous.size > 0:
        proof = levels.consistency_proof(previous.size, head.size)
        if not verify_consistency(previous.size, head.size, previous.root, head.root, proof):
            note(
                Finding(
                    first,
                    blame,
                    f"tree head {head.size} is not consistent with tree head {previous.size}",
                )
            )


def _record_json(record: ArchivedRecord) -> dict[str, Any]:
    def b64(data: bytes | None) -> str | None:
        return None if data is None else base64.b64encode(data).decode("ascii")

    return {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp_ms": record.timestamp_ms,
        "key": b64(record.key),
        "value": b64(record.value),
        "headers": [[name, b64(value)] for name, value in record.headers],
    }


def prove_record(path: Path, topic: str, partition: int, offset: int) -> dict[str, Any]:
    """An inclusion proof of one record against the latest signed head that covers it.

    Everything a third party needs besides the auditor's public key: the leaf input
    (whose SHA-256 after a 0x00 byte is the leaf hash), the audit path, the signed head.
    """
    with ArchiveStore.open_reader(path) as store:
        stored = store.find(topic, partition, offset)
        if stored is None:
            raise NotProvable(f"{topic}/{partition}/{offset} is not in the archive {path}")
        covering = [h for h in store.heads() if h.size > stored.leaf_index]
        if not covering:
            raise NotProvable(
                f"no signed tree head covers leaf {stored.leaf_index} yet; "
                "wait for the archiver's next head and ask again"
            )
        head = covering[-1]
        levels = TreeLevels(store.leaf_hashes(head.size))
    leaf_input = stored.leaf_input()
    leaf = leaf_hash(leaf_input)
    path_hashes = levels.inclusion_proof(stored.leaf_index, head.size)
    if not verify_inclusion(stored.leaf_index, head.size, leaf, path_hashes, head.root):
        raise NotProvable(
            f"{topic}/{partition}/{offset} does not verify against head {head.size}: "
            f"run `i247 audit verify --archive {path}`"
        )
    return {
        "format": PROOF_FORMAT,
        "record": _record_json(stored.record),
        "leaf_index": stored.leaf_index,
        "tree_size": head.size,
        "leaf_input": leaf_input.hex(),
        "leaf_hash": leaf.hex(),
        "audit_path": [h.hex() for h in path_hashes],
        "tree_head": head.to_json(),
    }


def prove_consistency(path: Path, old_size: int, new_size: int) -> dict[str, Any]:
    """An RFC 6962 consistency proof between two stored signed heads, checked before it is
    given: the tree of ``new_size`` extends the one of ``old_size``, nothing rewritten."""
    with ArchiveStore.open_reader(path) as store:
        heads = {head.size: head for head in store.heads()}
        missing = [size for size in (old_size, new_size) if size not in heads]
        if missing:
            stored = ", ".join(str(size) for size in sorted(heads)) or "none yet"
            raise NotProvable(f"no signed tree head of size {missing[0]}; stored sizes: {stored}")
        if not 0 < old_size <= new_size:
            raise NotProvable(f"--from {old_size} must be above 0 and at most --to {new_size}")
        levels = TreeLevels(store.leaf_hashes(new_size))
    old, new = heads[old_size], heads[new_size]
    if levels.size < new_size:
        raise NotProvable(
            f"the archive holds {levels.size} leaves, fewer than head {new_size} signed: "
            f"run `i247 audit verify --archive {path}`"
        )
    proof = levels.consistency_proof(old_size, new_size) if old_size < new_size else []
    if not verify_consistency(old_size, new_size, old.root, new.root, proof):
        raise NotProvable(
            f"heads {old_size} and {new_size} are not consistent over the stored leaves: "
            f"run `i247 audit verify --archive {path}`"
        )
    return {
        "format": CONSISTENCY_FORMAT,
        "old_size": old_size,
        "new_size": new_size,
        "proof": [h.hex() for h in proof],
        "old_head": old.to_json(),
        "new_head": new.to_json(),
    }


def bench_archive(
    path: Path, *, records: int = 1_000_000, batch: int = 5_000, value_bytes: int = 1024
) -> dict[str, float]:
    """Write ``records`` generated records through the archive's append path, then verify.

    Returns write and verify rates (records/s); the figures an operator needs to size it.
    """
    key = Ed25519PrivateKey.generate()
    value = bytes(range(256)) * (value_bytes // 256) + b"\x00" * (value_bytes % 256)
    headers = (("ce_type", b"int.interpol.i247.bench.v1"), ("content-type", b"x"))
    started = time.perf_counter()
    with ArchiveStore.open_writer(path) as store:
        for first in range(0, records, batch):
            store.append(
                ArchivedRecord(
                    "bench.inbound", n % 4, n // 4, 1_700_000_000_000 + n, b"FRA", value, headers
                )
                for n in range(first, min(first + batch, records))
            )
        store.add_head(sign_tree_head(store.size, store.root(), 1_700_000_000_000, key))
    written = time.perf_counter() - started
    report = verify_archive(path, {key_id(key.public_key().public_bytes_raw()): key.public_key()})
    if not report.ok:
        raise AssertionError(f"a fresh bench archive fails verification: {report.first}")
    return {
        "records": float(records),
        "write_seconds": written,
        "write_records_per_s": records / written,
        "verify_seconds": report.seconds,
        "verify_records_per_s": records / report.seconds,
        "archive_bytes": float(path.stat().st_size),
    }


# --- command line ------------------------------------------------------------------


def _archive_path(args: argparse.Namespace, settings: Settings) -> Path:
    return Path(args.archive) if args.archive else default_archive_path(settings)


def verify_command(args: argparse.Namespace, settings: Settings) -> int:
    """``i247 audit verify``: 0 if the archive verifies, 1 naming the first broken record."""
    path = require_archive(_archive_path(args, settings))  # before the keys: say what is missing
    keys = Path(args.keys) if args.keys else Path(settings.keys_dir)
    signers = load_directory(keys).get(AUDITOR).signing
    report = verify_archive(path, signers)
    console = Console()
    summary = Table(title=f"audit of {path}", show_header=False)
    summary.add_row("records", f"{report.records:,}")
    summary.add_row("signed tree heads", str(report.heads))
    rate = report.records / report.seconds if report.seconds else 0.0
    summary.add_row("time", f"{report.seconds:.2f} s ({rate:,.0f} records/s)")
    console.print(summary)
    if report.ok:
        if report.heads == 0:
            console.print("[yellow]no signed tree head yet: records unchecked against a head")
        console.print("[bold green]verified[/]: every leaf, every head, every consistency proof")
        return 0
    first = report.first
    assert first is not None
    console.print(f"[bold red]TAMPERED[/] first break: {first}")
    findings = Table("leaf", "record", "problem", title="findings (leaf order)")
    for finding in report.findings:
        leaf = "-" if finding.leaf_index is None else str(finding.leaf_index)
        findings.add_row(leaf, finding.origin or "-", finding.problem)
    console.print(findings)
    return 1


def prove_command(args: argparse.Namespace, settings: Settings) -> int:
    """``i247 audit prove``: print an inclusion proof as JSON, 1 if it cannot be made."""
    path = _archive_path(args, settings)
    try:
        proof = prove_record(path, args.topic, args.partition, args.offset)
    except NotProvable as error:
        print(f"i247 audit prove: {error}")
        return 1
    print(json.dumps(proof, indent=2))
    return 0


def consistency_command(args: argparse.Namespace, settings: Settings) -> int:
    """``i247 audit consistency``: print a consistency proof as JSON, 1 if it cannot be made."""
    path = _archive_path(args, settings)
    try:
        proof = prove_consistency(path, args.old_size, args.new_size)
    except NotProvable as error:
        print(f"i247 audit consistency: {error}")
        return 1
    print(json.dumps(proof, indent=2))
    return 0


def bench_command(args: argparse.Namespace, settings: Settings) -> int:
    """``i247 audit bench``: archive write rate and verify rate on a generated archive (with
    ``--full``, the command line runs ``agents.bench.audit`` instead)."""
    path = Path(args.archive) if args.archive else Path(settings.data_dir) / "audit-bench.sqlite3"
    if path.exists():
        print(f"i247 audit bench: {path} exists; pass a new --archive path")
        return 2
    figures = bench_archive(path, records=args.records)
    print(json.dumps(figures, indent=2))
    return 0
