"""Personal data in prompts replaced by reversible placeholders, restored in the answer.

Pure domain code (no aiohttp): `settings` (the `pii:` section), `runtime` (what the
stage needs, compiled at start-up), `detect` (the detectors), `vault` (one request's
placeholders), `walk` (the texts a model reads, per provider and endpoint), `restore`
and `stream` (originals back in JSON answers and SSE). The aiohttp-facing stage is
gateway/stages/pseudonymise.py; the restore runs in the forward stage's relay. See
docs/pii.md.

Nothing here is imported by a gateway whose config turns no category on, except the
settings schema: every process (each worker too) starts no slower for it.
"""
