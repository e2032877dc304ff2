"""`s3-to-wistia`: the operators' command line. Runs on a workstation, never in Lambda (the
CoreLayer build leaves this folder out), so it may use third-party libraries.

    make install                          # .venv/bin/s3-to-wistia (or: pip install -e '.[cli]')
    s3-to-wistia doctor                   # is the deployment right? one line per check
    s3-to-wistia status --since 1d        # what was imported, what failed
    s3-to-wistia import s3://media-bucket/launch/demo.mp4
    s3-to-wistia redrive --dry-run        # then: s3-to-wistia redrive
    s3-to-wistia upload clip.mp4 intro.mov --project abc123def4
    make cli ARGS='status --local'        # after `make run`, or with `make local` up
    s3-to-wistia COMMAND --help           # every option; exit codes 0 ok, 1 failed, 2 usage

Commands
--------
status [s3://BUCKET[/PREFIX]] [--since DURATION] [--state STATE] [--media STATUS] [--limit N]
    The import records, newest change first: state, Wistia media, Wistia's processing
    status (media_status, once the webhooks or the poller wrote it; for a make-run
    snapshot, what the Data API said when it was taken) and the note (why it failed or was
    skipped), then totals by state. One object's URI is one Query; anything else a Scan,
    paginated, filtered server-side, with a progress bar, stopped once --limit (1000)
    records matched. `--json` for scripts.
import s3://BUCKET/KEY [--project ID] [--again]
    One object (its current version) through the function's own code path: the Importer
    from s3_to_wistia.wiring, built from the deployed function's environment (Lambda's
    GetFunctionConfiguration) or the local stack's, with your AWS credentials. A record
    already SUBMITTED, FAILED or SKIPPED is refused; --again reopens it first (only if
    unchanged since read; an earlier media's hashed id is kept in
    replaced_wistia_hashed_ids). The token secret is read first, so a secret you cannot
    read never fails the object. Exit 0 only when SUBMITTED.
redrive [--dry-run] [--limit N] [--wait S]
    The dead-letter queue, resubmitted through s3_to_wistia.redrive's policy: the deployed
    function invoked synchronously, or with --local the local stack's, in this process.
    `make redrive DRY_RUN=1 MAX=N` runs this command. Exit 1 while messages stay.
doctor
    The deployment, end to end, importing nothing: token secret, token (not the stack's
    placeholder), Wistia (a Data API read and an empty Upload API request, which tell an
    upload-only token from a read-only or a wrong one), URL signing and lifetime, table and
    index, queue, the bucket's notification or EventBridge rule, the webhook secret (when
    the receiver is deployed). One line each; exit 1 when something needs fixing.
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

Which deployment
----------------
Each command finds the resources it needs (resources.py), each from the first of:
its flag (`--token-secret`, `--table`, `--queue-url`, `--function`, `--bucket`,
`--upload-url`, `--api-url`, `--webhook-secret`); the CloudFormation stack's Outputs
(`--stack NAME`, else $S3_TO_WISTIA_STACK, else samconfig.toml's stack_name for
`--config-env`, else "s3-to-wistia"; `--region`, `--profile` as for the AWS CLI), read
only when a needed value has no flag; or, with `--local`, the local stack (below). The
Wistia URLs default to Wistia's own (never under --local; plain http only to a loopback
host). The Wistia token is only ever read from the token secret the function uses, parsed
as the function parses it (plain, or {"token": "..."}), never taken from the command line.

The local stack (--local)
-------------------------
`make run` stops its stack when it ends; `make local` starts the same one (moto, the
Wistia emulator, the function on the bucket's notifications) and keeps it up until Ctrl-C.
Both describe it in .local/{run,live}/stack.json while it is up, and leave
snapshot.json (records, dead letters, medias) when it stops (local.py writes and reads
both). `--local` works on, in this order: a stack that is up (its process alive, its moto
answering); your own, when the function's variables are set (WISTIA_TOKEN_SECRET,
IMPORTS_TABLE_NAME, ..., with AWS_ENDPOINT_URL); else the newest snapshot, which only
`status` reads: the others refuse in one line that says to start `make local`. Every
command says which one it used. $S3_TO_WISTIA_LOCAL_DIR names another folder than .local/.

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
(output.Output: `say`, `table`, `summary`, `result`, `note`, `warn`, `error`,
`progress(unit="bytes" | "items")`), and returns its exit code. The function's own code
path is `function.build_function(target, out, function.function_settings(target))`.
Raise errors.CliError("what happened: what to do") for an expected failure (UsageProblem
for bad usage); AWS, Wistia and file errors need no catching (errors.explain words them).
Then add the module to main.SUBCOMMANDS. A new stack output is one more `Resource` in
resources.py.
"""
