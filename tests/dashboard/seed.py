"""The seed panel's client examples, cut out of ../shared/seed/legacy-api-reference.txt."""

from __future__ import annotations

from pathlib import Path

SEED = Path(__file__).resolve().parents[3] / "shared" / "seed" / "legacy-api-reference.txt"


def code_lines(text: str) -> list[str]:
    """Lines without indentation, blank lines or the `<?php` opener: the seed lost its indentation."""
    return [line.strip() for line in text.splitlines() if line.strip() and line.strip() != "<?php"]


def _function(lines: list[str], comment: str) -> range:
    """Where the PHP function that follows `comment` lies, up to its closing brace."""
    start = lines.index(comment)
    depth, end = 0, start
    for end in range(start + 1, len(lines)):
        depth += lines[end].count("{") - lines[end].count("}")
        if depth == 0 and "}" in lines[end]:
            break
    return range(start, end + 1)


def seed_examples(key: str, endpoint: str) -> dict[str, list[str]]:
    """Each dashboard tab's expected code lines, with the key and endpoint put in."""
    text = SEED.read_text().replace("__APIKEY__", key).replace("__ENDPOINT__", endpoint)
    # The seed is a page's text: the PHP example starts on the line of the last error it lists.
    text = text.replace("Unknown action$apikey", "Unknown action\n$apikey")
    lines = code_lines(text)
    php_start = lines.index(f'$apikey = "{key}";')
    python_start = lines.index("import requests")
    curl_start = next(n for n, line in enumerate(lines) if line.startswith("curl ")) - 1  # its "# Balance"
    php, python, curl = lines[php_start:python_start], lines[python_start:curl_start], lines[curl_start:]
    no_curl, with_curl = _function(php, "// Query without CURL library"), _function(php, "// Query using CURL library")
    return {
        "PHP": [line for n, line in enumerate(php) if n not in with_curl],
        "PHP with curl": [
            line.replace("query_no_curl(", "query_curl(") for n, line in enumerate(php) if n not in no_curl
        ],
        "Python": python,
        "curl": curl,
    }
