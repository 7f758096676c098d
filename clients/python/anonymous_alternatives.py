"""Work around openapi-python-client's reading of optional auth (its issue #1372).

The document marks public reads `security: [{}, {"OAuth2PasswordBearer": []}]`: a token is
optional. openapi-python-client 0.29 treats any non-empty `security` as required and would
make those functions take only an `AuthenticatedClient`. An operation whose requirements
include the empty one is callable anonymously, which the generator reads from a missing
`security`; so this drops `security` there, and nowhere else.

Usage: python anonymous_alternatives.py IN.json OUT.json
"""

import json
import sys


def main(source: str, target: str) -> None:
    with open(source, encoding="utf-8") as handle:
        document = json.load(handle)
    for operations in document["paths"].values():
        for operation in operations.values():
            if {} in operation.get("security", []):
                del operation["security"]
    with open(target, "w", encoding="utf-8") as handle:
        json.dump(document, handle)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
