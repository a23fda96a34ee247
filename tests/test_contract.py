"""The contract is defined once: generated files must match the JSON table."""

from pathlib import Path

from zeroskip.driver import contract as C

ROOT = Path(__file__).resolve().parent.parent


def test_verilog_include_is_generated_from_json():
    assert (ROOT / "rtl" / "zs_contract.vh").read_text() == C.verilog_include(), (
        "rtl/zs_contract.vh is stale: run python -m zeroskip.driver.contract --write-verilog")


def test_docs_register_table_is_generated_from_json():
    text = (ROOT / "docs" / "hardware.md").read_text()
    assert C.docs_text(text) == text, "docs/hardware.md tables are stale: run --write-docs"


def test_register_offsets_unique_and_word_aligned():
    offs = [r["offset"] for r in C.REGISTERS]
    assert len(set(offs)) == len(offs)
    assert all(o % 4 == 0 for o in offs)


def test_error_codes_unique_and_have_fix_text():
    assert sorted(C.ERRORS) == list(range(len(C.ERRORS)))
    for code in C.ERRORS:
        if code:
            assert C.ERROR_FIX[code], f"error {code} has no fix text"
            assert C.ERRORS[code] in C.error_text(code)


def test_vlnv_format():
    assert C.VLNV.count(":") == 3 and C.VLNV.endswith(":" + C.IP["version"])
