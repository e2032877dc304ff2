"""`s3-to-wistia`: the operators' command line. Runs on a workstation, never in Lambda (the
CoreLayer build leaves this folder out), so it may use third-party libraries.

    make install                          # .venv/bin/s3-to-wistia (or: pip install -e '.[cli]')
    s3-to-wistia upload clip.mp4 intro.mov --project abc123def4
    s3-to-wistia upload talk.mp4 --name "Keynote 2026" --json
    make cli ARGS='upload clip.mp4 --stack media-staging'
    s3-to-wistia COMMAND --help           # every option; exit codes 0 ok, 1 failed, 2 usage

Commands
--------
upload FILE... [--project ID] [--name NAME] [--attempts N]
    The Upload API's multipart file upload, one file after the other, streamed from disk
    (a 1 GiB file peaks at about 49 MiB of memory), a progress bar per file on a terminal,
    each media's hashed id printed (`--json`: one document for scripts). Every file is
    checked first (exists, regular, not empty, readable); if one is not, nothing is sent.
    429 and 5xx answers and dropped connections are retried with jittered backoff, never
    sooner than Retry-After (a wait over 2 minutes gives up instead). Wistia has no
    idempotency key: when an answer is lost after the whole file was sent, the file is
    sent again and the output warns that Wistia may now hold it twice
    (`"possible_duplicate": true`). A rejected token (401), a plan refusal (403) or the
    video limit stops the run.

(To come, on the same foundation: status, import, redrive, doctor, backfill, reconcile.)

Which deployment
----------------
Each command finds the resources it needs (resources.py), each from the first of:
its flag (`--token-secret`, `--table`, `--queue-url`, `--function`, `--bucket`,
`--upload-url`, `--api-url`); the CloudFormation stack's Outputs (`--stack NAME`, else
$S3_TO_WISTIA_STACK, else samconfig.toml's stack_name, else "s3-to-wistia"; `--region`,
`--profile` as for the AWS CLI), read only when a needed value has no flag; or with
`--local`, the local stack (for now: the function's own variables, WISTIA_TOKEN_SECRET,
WISTIA_UPLOAD_URL, ..., with AWS_ENDPOINT_URL pointing at moto's server on loopback).
The Wistia URLs default to Wistia's own (never under --local; plain http only to a
loopback host). The Wistia token is only ever read from the token secret the function
uses, parsed as the function parses it (plain, or {"token": "..."}), never taken from
the command line.

Output
------
Results go to stdout (`--json`: one JSON document and nothing else); notes, warnings,
progress bars and errors to stderr. Colours only on a terminal and never with NO_COLOR;
progress bars only when stderr is a terminal. An expected failure (no such file, no such
stack, an unreadable secret, AWS or Wistia unreachable, a refused token) is one line,
`s3-to-wistia: error: what happened: what to do`, never a traceback. No secret, token or
presigned-URL signature is ever printed: every line is scrubbed (output.scrub).

Libraries
---------
click 8 (Pallets): the most used Python CLI library, no dependencies of its own (it is
already in the test venv through moto's Flask), nested commands with per-command help,
exit code 2 for usage errors built in, and `main(standalone_mode=False)` returns a
command's result, so tests run the real entry point in-process. Typer would add a layer
over click (and pull in rich and shellingham anyway) for type-hint sugar we do not need;
the shared options here are plain click.Option objects. rich (Textualize): progress bars
with bytes, speed and time left, tables, and terminal detection that honours NO_COLOR,
FORCE_COLOR and TTY_COMPATIBLE (pip itself vendors it). Both pinned exactly in
pyproject.toml's [cli] extra and tests/requirements.txt, with rich's dependencies
(markdown-it-py, mdurl, pygments).

Adding a subcommand
-------------------
A module here with one function registered by `@command(name, needs=[...],
json_output=...)` (app.py): it gets `target` (resources.Target: `target.value(TABLE)`,
`target.client("dynamodb")`, `target.wistia_token()`, `target.wistia()`) and `out`
(output.Output: `say`, `table`, `result`, `note`, `warn`, `error`, `progress()`), and
returns its exit code. Raise errors.CliError("what happened: what to do") for an expected
failure (UsageProblem for bad usage); AWS, Wistia and file errors need no catching
(errors.explain words them). Then add the module to main.SUBCOMMANDS. A new stack output
is one more `Resource` in resources.py.
"""
