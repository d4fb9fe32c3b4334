"""`ifd` sub-commands by area, one module each; every module has `register(add)`.

`add(name, handler, help)` creates a sub-parser with the common options (--workspace, --params, --json)
and returns it for the command's own arguments. Handlers import heavy libraries inside, so
`ifd --help` stays fast.
"""

COMMAND_MODULES: tuple[str, ...] = (
    "ifd.commands.bench",
    "ifd.commands.lifecycle",
    "ifd.commands.protocol",
    "ifd.commands.serving",
)
