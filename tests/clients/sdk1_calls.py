"""Run by tests/clients/test_python_sdk1.py with PYTHONPATH=tests/clients/py-sdk1: the
anthropic SDK 1.x against the gateway. Prints one JSON line of what it got back.

    python sdk1_calls.py BASE_URL KEY CA_FILE
"""

from __future__ import annotations

import json
import sys

import anthropic


def main() -> None:
    base_url, key, ca = sys.argv[1:4]
    client = anthropic.Anthropic(
        base_url=base_url,
        api_key=key,
        max_retries=0,
        http_client=anthropic.DefaultHttpxClient(verify=ca),
    )
    msg = client.messages.create(
        model="claude-sonnet-5-5", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
    )
    with client.messages.stream(
        model="claude-sonnet-5-5", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        streamed = "".join(stream.text_stream)
    refused = None
    try:
        client.beta.files.list()
    except anthropic.BadRequestError as exc:
        refused = {"status": exc.status_code, "body": exc.body}
    print(
        json.dumps(
            {
                "version": anthropic.__version__,
                "text": msg.content[0].text,  # type: ignore[union-attr]
                "streamed": streamed,
                "models": [m.id for m in client.models.list()],
                "refused": refused,
            }
        )
    )


if __name__ == "__main__":
    main()
