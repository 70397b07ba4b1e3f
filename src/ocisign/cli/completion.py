"""Shell completion scripts (bash, zsh, fish, PowerShell) generated from the argparse tree.

The tree is read from the real parsers (every command module's ``add_arguments``), so a new flag
or subcommand completes without editing anything here. Each script computes the *node* the
cursor is in (``/cert/add``: the known subcommand words typed so far, options skipped), then
offers that node's subcommands and options; after an option with fixed choices (``-o``) it
offers the choices; elsewhere it falls back to file names.
"""

from __future__ import annotations

import argparse
import dataclasses

__all__ = ["SHELLS", "Node", "command_tree", "script"]

SHELLS = ("bash", "zsh", "fish", "powershell")


@dataclasses.dataclass
class Node:
    """One command or subcommand: its path (``/cert/add``), help, options and children."""

    path: str
    help: str = ""
    #: option string -> help text
    options: dict[str, str] = dataclasses.field(default_factory=dict)
    #: option string -> the values it accepts (``-o`` -> text, json)
    choices: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    #: fixed values of positional arguments (``completion`` -> bash, zsh, …)
    values: list[str] = dataclasses.field(default_factory=list)
    #: subcommand word (aliases included) -> child node
    children: dict[str, Node] = dataclasses.field(default_factory=dict)

    def walk(self) -> list[Node]:
        """This node and every node under it (each once, aliases share a node)."""
        out: list[Node] = [self]
        seen = {id(self)}
        for child in self.children.values():
            for n in child.walk():
                if id(n) not in seen:
                    seen.add(id(n))
                    out.append(n)
        return out


def _fill(node: Node, parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            by_parser: dict[int, Node] = {}
            for word, sub in action.choices.items():
                child = by_parser.get(id(sub))
                if child is None:
                    child = Node(path=f"{node.path}/{word}", help=str(helps.get(word, "")))
                    by_parser[id(sub)] = child
                    _fill(child, sub)
                node.children[word] = child
            continue
        if action.help == argparse.SUPPRESS:
            continue
        if not action.option_strings:
            node.values += [str(c) for c in action.choices or ()]
            continue
        for opt in action.option_strings:
            node.options[opt] = str(action.help or "")
            if action.choices is not None:
                node.choices[opt] = [str(c) for c in action.choices]


def command_tree() -> Node:
    """The whole command tree (imports every command module's argument definitions, not their code)."""
    from ocisign.cli.app import ALIASES, COMMANDS, build_parser

    root = Node(path="")
    top = build_parser(None)
    _fill(root, top)
    root.children.clear()
    for name, (_, help_text, _aliases) in COMMANDS.items():
        parser = build_parser(name)
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
        node = Node(path=f"/{name}", help=help_text)
        _fill(node, sub)
        root.children[name] = node
    for alias, name in ALIASES.items():
        root.children[alias] = root.children[name]
    return root


def _known_paths(root: Node) -> list[tuple[str, str]]:
    """Every ``node/word`` that moves the scanners to a child node, and that child's path (an alias
    such as ``/certificate`` leads to ``/cert``)."""
    out: list[tuple[str, str]] = []
    for node in root.walk():
        out += [(f"{node.path}/{word}", child.path) for word, child in node.children.items()]
    return out


def _words(node: Node) -> str:
    return " ".join([*node.children, *node.values, *node.options])


def _sh_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _bash(root: Node) -> str:
    nodes = root.walk()
    lines = [
        "# ocisign bash completion: source it, e.g. in ~/.bashrc: eval \"$(ocisign completion bash)\"",
        "_ocisign() {",
        '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="" node="" w i words=""',
        '    (( COMP_CWORD > 0 )) && prev="${COMP_WORDS[COMP_CWORD-1]}"',
        "    for ((i = 1; i < COMP_CWORD; i++)); do",
        '        w="${COMP_WORDS[i]}"',
        '        case "${node}/${w}" in',
    ]
    for path, target in _known_paths(root):
        lines.append(f"            {_sh_quote(path)}) node={_sh_quote(target)} ;;")
    lines += ["        esac", "    done", '    case "${node}|${prev}" in']
    for node in nodes:
        for opt, values in node.choices.items():
            lines.append(f"        {_sh_quote(node.path + '|' + opt)}) words={_sh_quote(' '.join(values))} ;;")
    lines += ["    esac", '    if [[ -z "$words" ]]; then', '        case "$node" in']
    for node in nodes:
        lines.append(f"            {_sh_quote(node.path)}) words={_sh_quote(_words(node))} ;;")
    lines += [
        "        esac",
        '        if [[ "$cur" != -* && -n "$node" ]] && ! compgen -W "$words" -- "$cur" >/dev/null; then',
        '            COMPREPLY=($(compgen -f -- "$cur"))',
        "            return 0",
        "        fi",
        "    fi",
        '    COMPREPLY=($(compgen -W "$words" -- "$cur"))',
        "}",
        "complete -o default -F _ocisign ocisign",
        "",
    ]
    return "\n".join(lines)


def _zsh(root: Node) -> str:
    return (
        "#compdef ocisign\n"
        "# ocisign zsh completion: eval \"$(ocisign completion zsh)\" in ~/.zshrc (uses bashcompinit)\n"
        "(( $+functions[compdef] )) || { autoload -U +X compinit && compinit }\n"
        "autoload -U +X bashcompinit && bashcompinit\n"
        + _bash(root)
    )


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _fish(root: Node) -> str:
    lines = [
        "# ocisign fish completion: ocisign completion fish > ~/.config/fish/completions/ocisign.fish",
        "function __ocisign_node",
        "    set -l words (commandline -opc)",
        "    set -l node ''",
        "    for w in $words[2..-1]",
        "        switch \"$node/$w\"",
        *(f"            case {_fish_quote(path)}\n                set node {_fish_quote(target)}"
          for path, target in _known_paths(root)),
        "        end",
        "    end",
        "    echo $node",
        "end",
    ]
    for node in root.walk():
        cond = f"test (__ocisign_node) = {_fish_quote(node.path)}" if node.path else "test -z (__ocisign_node)"
        for word, child in node.children.items():
            lines.append(f"complete -c ocisign -n {_fish_quote(cond)} -a {_fish_quote(word)} "
                         f"-d {_fish_quote(child.help)}")
        for value in node.values:
            lines.append(f"complete -c ocisign -n {_fish_quote(cond)} -a {_fish_quote(value)}")
        for opt, help_text in node.options.items():
            flag = f"-l {opt[2:]}" if opt.startswith("--") else f"-s {opt[1:]}"
            values = node.choices.get(opt)
            extra = f" -x -a {_fish_quote(' '.join(values))}" if values else ""
            lines.append(f"complete -c ocisign -n {_fish_quote(cond)} {flag} -d {_fish_quote(help_text)}{extra}")
    return "\n".join(lines) + "\n"


def _ps_quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _powershell(root: Node) -> str:
    lines = [
        "# ocisign PowerShell completion: ocisign completion powershell | Out-String | Invoke-Expression",
        "$__ocisignPaths = @{",
    ]
    lines += [f"    {_ps_quote(path)} = {_ps_quote(target)}" for path, target in _known_paths(root)]
    lines += ["}", "$__ocisignWords = @{"]
    lines += [f"    {_ps_quote(n.path)} = @({', '.join(_ps_quote(w) for w in _words(n).split())})" for n in root.walk()]
    lines += ["}", "$__ocisignChoices = @{"]
    for node in root.walk():
        for opt, values in node.choices.items():
            lines.append(f"    {_ps_quote(node.path + '|' + opt)} = @({', '.join(_ps_quote(v) for v in values)})")
    lines += [
        "}",
        "Register-ArgumentCompleter -Native -CommandName ocisign -ScriptBlock {",
        "    param($wordToComplete, $commandAst, $cursorPosition)",
        "    $node = ''",
        "    $prev = ''",
        "    $elements = @($commandAst.CommandElements | Select-Object -Skip 1 | ForEach-Object { $_.ToString() })",
        "    if ($wordToComplete -ne '') { $elements = @($elements | Select-Object -First ($elements.Count - 1)) }",
        "    foreach ($w in $elements) {",
        "        if ($__ocisignPaths.ContainsKey(\"$node/$w\")) { $node = $__ocisignPaths[\"$node/$w\"] }",
        "        $prev = $w",
        "    }",
        "    $words = $__ocisignChoices[\"$node|$prev\"]",
        "    if ($null -eq $words) { $words = $__ocisignWords[$node] }",
        "    $words | Where-Object { $_ -like \"$wordToComplete*\" } | ForEach-Object {",
        "        [System.Management.Automation.CompletionResult]::new($_, $_, 'ParameterValue', $_)",
        "    }",
        "}",
        "",
    ]
    return "\n".join(lines)


def script(shell: str, root: Node | None = None) -> str:
    """The completion script for ``shell`` (one of :data:`SHELLS`)."""
    tree = root or command_tree()
    return {"bash": _bash, "zsh": _zsh, "fish": _fish, "powershell": _powershell}[shell](tree)
