"""The hardware/software contract, loaded from ``contract.json`` (the one definition).

Register offsets, bit positions, error codes, magic numbers, program-format sizes and
timing constants come from the JSON table; the Verilog include ``rtl/zs_contract.vh`` and
the register table in ``docs/hardware.md`` are generated from it::

    python -m zeroskip.driver.contract --write-verilog --write-docs

``tests/test_contract.py`` fails when either generated file is stale.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import MappingProxyType

_PATH = Path(__file__).with_name("contract.json")
_DATA = json.loads(_PATH.read_text())

FORMAT_VERSION: int = _DATA["format_version"]
RTL_VERSION: int = _DATA["rtl_version"]
IP = MappingProxyType(dict(_DATA["ip"]))
VLNV: str = "{vendor}:{library}:{name}:{version}".format(**_DATA["ip"])
ID_MAGIC: int = _DATA["id_magic"]
PROGRAM_MAGIC: int = _DATA["program_magic"]
ACK_MAGIC: int = _DATA["ack_magic"]
ERR_MAGIC: int = _DATA["err_magic"]
STREAM_BYTES: int = _DATA["stream_bytes"]

REG = MappingProxyType({r["name"]: r["offset"] for r in _DATA["registers"]})
REGISTERS = tuple(MappingProxyType(dict(r)) for r in _DATA["registers"])
CTRL = MappingProxyType({k: 1 << v for k, v in _DATA["ctrl_bits"].items()})
STATUS = MappingProxyType({k: 1 << v for k, v in _DATA["status_bits"].items()})
ERRORS = MappingProxyType({e["code"]: e["name"] for e in _DATA["errors"]})
ERROR_CODES = MappingProxyType({e["name"]: e["code"] for e in _DATA["errors"]})
ERROR_FIX = MappingProxyType({e["code"]: e["fix"] for e in _DATA["errors"]})
DEFAULTS = MappingProxyType(dict(_DATA["defaults"]))
LANES_CHOICES: tuple = tuple(_DATA["lanes_choices"])
TIMING = MappingProxyType({k: v for k, v in _DATA["timing"].items() if not k.startswith("_")})
PROGRAM = MappingProxyType(dict(_DATA["program"]))
LAYER_FLAGS = MappingProxyType({k: 1 << v for k, v in _DATA["layer_flags"].items()})
INPUT_MODES = MappingProxyType(dict(_DATA["input_modes"]))
DESC_BITS = MappingProxyType({k: v for k, v in _DATA["desc_bits"].items() if not k.startswith("_")})
AVG_RECIP = tuple(_DATA["avg_recip"])


def error_text(code: int) -> str:
    """'BAD_MAGIC (1): the stream is not a zeroskip program: ...'"""
    name = ERRORS.get(code, "UNKNOWN")
    fix = ERROR_FIX.get(code, "unknown error code: the overlay and the software versions differ")
    return f"{name} ({code}): {fix}" if fix else f"{name} ({code})"


def verilog_include() -> str:
    """Text of rtl/zs_contract.vh."""
    lines = [
        "// zs_contract.vh: generated from driver/contract.json by",
        "//   python -m zeroskip.driver.contract --write-verilog",
        "// Do not edit; edit the JSON and regenerate (tests/test_contract.py checks it).",
        "`ifndef ZS_CONTRACT_VH",
        "`define ZS_CONTRACT_VH",
        f"`define ZS_FORMAT_VERSION 16'd{FORMAT_VERSION}",
        f"`define ZS_RTL_VERSION 16'd{RTL_VERSION}",
        f"`define ZS_ID_MAGIC 32'h{ID_MAGIC:08X}",
        f"`define ZS_PROGRAM_MAGIC 32'h{PROGRAM_MAGIC:08X}",
        f"`define ZS_ACK_MAGIC 32'h{ACK_MAGIC:08X}",
        f"`define ZS_ERR_MAGIC 32'h{ERR_MAGIC:08X}",
    ]
    for r in _DATA["registers"]:
        lines.append(f"`define ZS_REG_{r['name']} 8'h{r['offset']:02X}  // {r['access']}: {r['doc']}")
    for k, v in _DATA["ctrl_bits"].items():
        lines.append(f"`define ZS_CTRL_{k} {v}")
    for k, v in _DATA["status_bits"].items():
        lines.append(f"`define ZS_STATUS_{k} {v}")
    for e in _DATA["errors"]:
        lines.append(f"`define ZS_ERR_{e['name']} 8'd{e['code']}")
    for k, v in _DATA["layer_flags"].items():
        lines.append(f"`define ZS_FLAG_{k} {v}")
    for k, v in DESC_BITS.items():
        lines.append(f"`define ZS_DESC_{k} {v}")
    for k, v in _DATA["input_modes"].items():
        lines.append(f"`define ZS_MODE_{k} {v}")
    for k, v in TIMING.items():
        lines.append(f"`define ZS_T_{k} {v}")
    for k, v in _DATA["program"].items():
        lines.append(f"`define ZS_PRG_{k.upper()} {v}")
    lines += ["`endif", ""]
    return "\n".join(lines)


def register_table_md() -> str:
    """Markdown register table for docs/hardware.md."""
    rows = ["| offset | name | access | meaning |", "|---|---|---|---|"]
    for r in _DATA["registers"]:
        rows.append(f"| 0x{r['offset']:02X} | {r['name']} | {r['access']} | {r['doc']} |")
    rows += ["", "| code | error | what to do |", "|---|---|---|"]
    for e in _DATA["errors"]:
        rows.append(f"| {e['code']} | {e['name']} | {e['fix']} |")
    return "\n".join(rows) + "\n"


def _repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


MARKER = "<!-- REGISTERS -->"


def docs_text(current: str) -> str:
    """docs/hardware.md with the generated tables after the marker."""
    head = current.split(MARKER)[0]
    return head + MARKER + "\n\n" + register_table_md()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write-verilog", action="store_true", help="regenerate rtl/zs_contract.vh")
    ap.add_argument("--write-docs", action="store_true", help="regenerate the tables in docs/hardware.md")
    args = ap.parse_args(argv)
    root = _repo_root()
    if args.write_verilog:
        (root / "rtl" / "zs_contract.vh").write_text(verilog_include())
    if args.write_docs:
        p = root / "docs" / "hardware.md"
        p.write_text(docs_text(p.read_text()))
    if not (args.write_verilog or args.write_docs):
        print(verilog_include())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
