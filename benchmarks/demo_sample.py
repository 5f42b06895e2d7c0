"""Rebuild the demo's packaged evaluation sample from the shared corpus (held-out ``valid`` documents).

    python benchmarks/demo_sample.py

Writes ``zett/demo_data/demo_sample.jsonl.gz`` (``{"lang", "source", "text"}`` per line, the first
``CHARS`` characters of up to ``DOCS`` documents per language) and ``zett/demo_data/README.md`` (per
language: documents, size, source packages and their licences). Only sources listed in ``SOURCES`` are
taken, in that order of preference and interleaved, so each language's first documents mix them; every
source's licence allows redistribution, and the README says which it is.
"""

from __future__ import annotations

import gzip
import json
import unicodedata
from pathlib import Path

from common import ASSETS, require_assets

OUT = Path(__file__).resolve().parent.parent / "zett" / "demo_data"
DOCS, CHARS = 4, 1500
HANDBOOK = (
    "debian-handbook (The Debian Administrator's Handbook by R. Hertzog and R. Mas, translation)",
    "GPL-2+ or CC-BY-SA-3.0",
)
GNOME = ("gnome-user-docs (GNOME Help by the GNOME Documentation Project, translation)", "CC-BY-SA-3.0")
LICENCES = {  # corpus `source` prefix -> (Debian package and work, licence), as recorded with the corpus
    "bible_web_en": ("sword-text-web (World English Bible)", "public domain"),
    "bible_rv1909_es": ("sword-text-sparv (Reina-Valera 1909)", "public domain"),
    "cfi_sv": ("cfi-sv", "public domain"),
    "lifelines_doc_sv": ("lifelines-doc-sv (LifeLines manual)", "MIT"),
    "python_docs_rst_en": ("python3.11-doc (Python documentation, reST sources)", "PSF-2.0"),
    "code_python_stdlib_py": ("Python 3.11 standard library source", "PSF-2.0"),
    "math_pari_doc_tex": ("pari-doc (PARI/GP manual, TeX)", "GPL-2+"),
    "debian_handbook_": HANDBOOK,
    "gnome_user_docs_": GNOME,
    "installation_guide_": ("installation-guide-amd64 (Debian installation guide, translation)", "GPL-2"),
    "manpages_de": ("manpages-de (manpages-l10n)", "GPL-3+"),
    "manpages_uk": ("manpages-uk (manpages-l10n)", "GPL-3+"),
}
SOURCES = {  # language -> corpus sources, best licence first; public domain and permissive where there is any
    "en": ["bible_web_en", "python_docs_rst_en"],
    "de": ["debian_handbook_de-DE.translated_only", "manpages_de"],
    "zh": ["debian_handbook_zh-CN.translated_only"],
    "fr": ["debian_handbook_fr-FR.translated_only"],
    "es": ["bible_rv1909_es"],
    "ru": ["debian_handbook_ru-RU.translated_only"],
    "ko": ["gnome_user_docs_ko.translated_only", "debian_handbook_ko-KR.translated_only"],
    "nl": ["debian_handbook_nl-NL.translated_only"],
    "sv": ["cfi_sv", "lifelines_doc_sv"],
    "tr": ["debian_handbook_tr-TR.translated_only"],
    "uk": ["manpages_uk"],
    "vi": ["debian_handbook_vi-VN.translated_only"],
    "cs": ["gnome_user_docs_cs.translated_only", "debian_handbook_cs-CZ.translated_only"],
    "el": ["debian_handbook_el-GR.translated_only", "installation_guide_el.translated_only"],
    "fi": ["gnome_user_docs_fi.translated_only"],
    "hu": ["gnome_user_docs_hu.translated_only"],
    "ro": ["debian_handbook_ro-RO.translated_only", "installation_guide_ro.translated_only"],
    "code": ["code_python_stdlib_py"],
    "math": ["math_pari_doc_tex"],
}
SCRIPTS = {"zh": "CJK", "ru": "CYRILLIC", "uk": "CYRILLIC", "el": "GREEK", "ko": "HANGUL"}


def licence(source: str) -> tuple[str, str]:
    return next(v for k, v in LICENCES.items() if source.startswith(k))


def in_script(text: str, lang: str) -> bool:
    """At least half the letters in the language's own script (some translated pages keep English paragraphs)."""
    letters = [c for c in text if c.isalpha()]
    script = SCRIPTS.get(lang)
    return not script or sum(script in unicodedata.name(c, "") for c in letters) >= 0.5 * max(1, len(letters))


def pick(lang: str) -> list[dict]:
    by_source: dict[str, list[str]] = {s: [] for s in SOURCES[lang]}
    with open(ASSETS / "corpus" / f"{lang}.valid.jsonl", encoding="utf-8") as fh:
        for line in fh:
            doc = json.loads(line)
            text = doc["text"][:CHARS]
            if doc["source"] in by_source and in_script(text, lang):
                by_source[doc["source"]].append(text)
    rows = []
    while len(rows) < DOCS and any(by_source.values()):  # interleave: the first documents mix the sources
        for source, texts in by_source.items():
            if texts and len(rows) < DOCS:
                rows.append({"lang": lang, "source": source, "text": texts.pop(0)})
    return rows


def readme(rows: list[dict]) -> str:
    lines = [
        "# The demo's evaluation sample",
        "",
        f"`demo_sample.jsonl.gz`: up to {DOCS} documents per language, each the first {CHARS:,} characters of a",
        "held-out (`valid`) document of the project's development corpus, whose texts come from Debian",
        "packages. `zett demo` evaluates the first `--docs` of them (default 2). Rebuilt by",
        "`benchmarks/demo_sample.py`. Licences are those of the source packages, as recorded with the",
        "corpus; every one allows redistribution. The excerpts keep their licences (CC-BY-SA and GPL ones",
        "included): they are data shipped beside zett's code, which is Apache-2.0.",
        "",
        "| language | documents | KB (UTF-8) | source | licence |",
        "|---|---|---|---|---|",
    ]
    for lang in SOURCES:
        mine = [r for r in rows if r["lang"] == lang]
        used = list(dict.fromkeys(r["source"] for r in mine))
        size = sum(len(r["text"].encode()) for r in mine) / 1000
        lines.append(
            f"| {lang} | {len(mine)} | {size:.1f} | "
            + "; ".join(licence(s)[0] for s in used)
            + " | "
            + "; ".join(licence(s)[1] for s in used)
            + " |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    require_assets()
    rows = [row for lang in SOURCES for row in pick(lang)]
    OUT.mkdir(parents=True, exist_ok=True)
    body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    (OUT / "demo_sample.jsonl.gz").write_bytes(gzip.compress(body, compresslevel=9, mtime=0))
    (OUT / "README.md").write_text(readme(rows), encoding="utf-8")
    print(f"wrote {len(rows)} documents, {len(body) / 1000:.0f} KB ({OUT})")


if __name__ == "__main__":
    main()
