"""Write .dvc/plots/page.html, the HTML template of `dvc plots show` (`plots.html_template` in
.dvc/config), with vega, vega-lite and vega-embed inlined, so that the page renders without
network (DVC's own template loads them from a CDN).

The libraries come from npm at the versions of scripts/vega/package-lock.json: run
``npm ci --prefix scripts/vega`` once, then ``python scripts/dvc_plots_page.py``; ``--check``
exits 1 when the page is stale.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NPM = ROOT / "scripts" / "vega"
PAGE = ROOT / ".dvc" / "plots" / "page.html"
LIBRARIES = ("vega", "vega-lite", "vega-embed")
"""In load order: vega-lite needs vega, vega-embed both."""
PLACEHOLDERS = ("{refresh_tag}", "{plot_divs}")
"""What DVC fills in (its `{scripts}`, the CDN tags, is left out on purpose)."""


def locked_versions(npm: Path = NPM) -> dict[str, str]:
    """{library: version} of package-lock.json."""
    packages = json.loads((npm / "package-lock.json").read_text())["packages"]
    return {name: packages[f"node_modules/{name}"]["version"] for name in LIBRARIES}


def header(versions: dict[str, str]) -> str:
    """The comment naming the inlined libraries (tests compare it with package-lock.json)."""
    names = ", ".join(f"{name}@{versions[name]}" for name in LIBRARIES)
    return f"<!-- inlined: {names} (BSD-3-Clause, the Vega project) -->"


def build(npm: Path = NPM) -> str:
    """The page, from the installed npm packages (their versions must be the locked ones)."""
    versions = locked_versions(npm)
    scripts = []
    for name in LIBRARIES:
        package = npm / "node_modules" / name
        if not package.is_dir():
            sys.exit(f"{package}: missing; run `npm ci --prefix {npm.relative_to(ROOT)}`")
        installed = json.loads((package / "package.json").read_text())["version"]
        if installed != versions[name]:
            sys.exit(f"{name} {installed} installed, {versions[name]} locked: run `npm ci`")
        code = (package / "build" / f"{name}.min.js").read_text()
        clashes = [s for s in ("</script", "<!--", *PLACEHOLDERS, "{scripts}") if s in code]
        if clashes:
            sys.exit(f"{name}.min.js contains {clashes}: it cannot be inlined as it is")
        scripts.append(f"    <script>{code}</script>")
    return "\n".join(
        [
            "<!DOCTYPE html>",
            "<html>",
            "<head>",
            "    {refresh_tag}",
            '    <meta charset="utf-8">',
            "    <title>DVC Plot</title>",
            f"    {header(versions)}",
            *scripts,
            "    <style>",
            "        table {",
            "            border-spacing: 15px;",
            "        }",
            "    </style>",
            "</head>",
            "<body>",
            "    {plot_divs}",
            "</body>",
            "</html>",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the page is stale")
    args = parser.parse_args(argv)
    text = build()
    if not args.check:
        PAGE.write_text(text)
        print(f"wrote {PAGE}")
        return 0
    if PAGE.is_file() and PAGE.read_text() == text:
        print(f"{PAGE} is current")
        return 0
    print(f"{PAGE} is stale: run `python scripts/dvc_plots_page.py`")
    return 1


if __name__ == "__main__":
    sys.exit(main())
