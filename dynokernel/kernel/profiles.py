r"""REPL profiles: how to drive bash, python, irb, a Rails console and node through a terminal.

A profile is declarative: the command that starts the REPL in the dyno, a regular expression for its
first prompt, REPL-language source run once at start (``init``), and templates that wrap a cell,
a completion request and the init itself. A new REPL is a profile of a few lines, e.g.::

    IRB_LIKE = dataclasses.replace(IRB, name="pry", command="exec pry ...", ready=r"\] pry\(main\)> $")

The protocol, the same for every REPL:

- Everything goes to the REPL as base64 (no control characters, no TAB, no continuation hazards) in
  lines of at most :data:`CHUNK` characters (a terminal in canonical mode takes at most 4095 per
  line). The cell's lines form ONE statement of the REPL (or, for node, lines its eval hook collects),
  so the REPL runs the cell once, as a unit.
- The REPL's primary prompt is an invisible OSC string that carries a per-session token, the cell's
  nonce, the exit status and an error name: ``ESC ] 5799 ; token ; p ; nonce ; status ; ename BEL``.
  The nonce is chosen per cell and only reaches the prompt after the cell's code has finished, so a
  program printing an old prompt (or ``env`` showing ``PS1``) cannot end a cell.
- When the cell reads the terminal through a hooked call (bash ``read``, python ``input()``/
  ``getpass``, ruby ``gets``) the REPL first prints ``ESC ] 5799 ; token ; i ; flags ; base64 prompt
  BEL`` (flags: ``p`` password, ``n`` no newline after the answer).
- Standard error is marked: ``ESC ] 5799 ; token ; s ; 2 BEL`` before it and ``... ; s ; 1 BEL`` after,
  by python's ``sys.stderr``, irb's ``$stderr`` and node's ``process.stderr`` (so tracebacks, warnings
  and ``console.error`` are Jupyter's stderr stream). bash leaves fd 2 on the terminal: the programs a
  shell runs keep a terminal there (progress bars, colours, y/N and password prompts) and their
  output interleaves exactly as in a terminal, so Dyno Bash shows it as stdout, as a terminal does.
- Rich output (``display`` in each REPL) is ``ESC ] 5799 ; token ; d ; mime ; base64 [; mime ; base64...]
  BEL``, in order with the text around it.
- ``stdin`` is 0 when the frontend cannot answer input: the cell then runs with its standard input on
  ``/dev/null``, so ``read``/``input()``/``gets`` see end-of-file at once instead of hanging.
"""
from __future__ import annotations

import base64
import codeop
import dataclasses
import re
import shlex
import shutil
import subprocess
import warnings
from dataclasses import dataclass
from typing import Callable, Optional

__all__ = [
    "ReplProfile", "IsComplete", "CompletionQuery", "PROFILES", "get_profile",
    "BASH", "PYTHON", "IRB", "RAILS", "NODE", "HEADLESS_ENV", "OSC", "CHUNK",
]

OSC = 5799          # the private OSC number of our prompt, input, stderr and display markers
CHUNK = 3000        # base64 characters per line sent (the terminal's line limit is 4095)
COMPLETIONS_BEGIN = "<dk-completions>"
COMPLETIONS_END = "</dk-completions>"

# Set in every dyno REPL: no pagers, no interactive git/apt prompts, colours on (SGR is kept and
# rendered by Jupyter; full-screen programs are detected by their alternate-screen switch).
HEADLESS_ENV = {
    "PAGER": "cat", "GIT_PAGER": "cat", "MANPAGER": "cat", "SYSTEMD_PAGER": "cat",
    "GIT_TERMINAL_PROMPT": "0", "DEBIAN_FRONTEND": "noninteractive", "TERM": "xterm-256color",
    "PYTHON_BASIC_REPL": "1",
}
_PREFIX = ("stty -echo 2>/dev/null; export "
           + " ".join(f"{k}={shlex.quote(v)}" for k, v in HEADLESS_ENV.items()) + "; ")


@dataclass(frozen=True)
class IsComplete:
    """Answer to Jupyter's is_complete_request: complete, incomplete, invalid or unknown."""

    status: str
    indent: str = ""


@dataclass(frozen=True)
class CompletionQuery:
    """The word to complete (``code[start:end]``) and the REPL command that lists its completions."""

    word: str
    start: int
    end: int
    command: Callable[[str], str]   # nonce -> the line(s) to send


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8", "surrogateescape")).decode("ascii")


def _chunks(b64: str) -> list[str]:
    return [b64[i:i + CHUNK] for i in range(0, len(b64), CHUNK)]


@dataclass(frozen=True)
class ReplProfile:
    """How to start one REPL, set its prompt, send it cells and ask it for completions."""

    name: str
    language: str
    display_name: str
    command: str                 # shell command run in the dyno (``sh -c``), after the headless prefix
    ready: str                   # regex of the REPL's first prompt (bytes are matched, as latin-1)
    init: str                    # REPL source run once; ``@TOKEN@`` and ``@NONCE@`` are filled in
    boot: str                    # one REPL statement running base64 ``{chunks}`` of ``init``
    cell: str                    # one REPL statement running a cell: ``{nonce}``, ``{stdin}``, ``{chunks}``
    complete: str                # a REPL statement listing completions: ``{nonce}``, ``{b64}``
    word: str                    # regex: the completable word at the end of the text before the cursor
    checker: Callable[[str], IsComplete]
    chunk: str = "{}"            # how one base64 line is written inside ``cell``
    join: str = "\n"             # what separates base64 lines
    boot_chunk: str = ""         # the same for ``boot`` (default: ``chunk``)
    file_extension: str = ""
    mimetype: str = "text/plain"
    pygments_lexer: str = ""
    codemirror_mode: str = ""
    tty_reset: str = ""          # a cell that repairs the terminal after a full-screen program
    refuse: tuple = ()           # (regex, message): cells that would break the session, refused
    init_extra: str = ""         # more init source (e.g. a variant's settings)
    startup_timeout: float = 30.0

    # -- starting ----------------------------------------------------------------------------
    @property
    def shell_command(self) -> str:
        """The full command for the dyno: terminal echo off, headless environment, the REPL."""
        return _PREFIX + self.command

    def argv(self) -> list[str]:
        """``argv`` to start the REPL locally (``pexpect.spawn(*argv)``)."""
        return ["/bin/sh", "-c", self.shell_command]

    @property
    def ready_regex(self) -> re.Pattern:
        return re.compile(self.ready.encode("latin-1"))

    def init_lines(self, token: str, nonce: str) -> str:
        """What to send once the REPL shows its first prompt."""
        source = (self.init + self.init_extra).replace("@TOKEN@", token).replace("@NONCE@", nonce)
        return self._wrap(self.boot, _b64(source), chunk=self.boot_chunk or self.chunk) + "\n"

    # -- cells -------------------------------------------------------------------------------
    def cell_lines(self, code: str, nonce: str, allow_stdin: bool = True) -> str:
        """The text to send for one cell: one statement of the REPL, in short base64 lines."""
        return self._wrap(self.cell, _b64(code), self.chunk, nonce=nonce,
                          stdin="1" if allow_stdin else "0") + "\n"

    def _wrap(self, template: str, b64: str, chunk: str, **fields: str) -> str:
        body = self.join.join(chunk.format(c) for c in _chunks(b64))
        return template.format(chunks=body, **fields)

    def refusal(self, code: str) -> Optional[str]:
        """Why this cell is not sent (it would break the session), or ``None``."""
        for pattern, message in self.refuse:
            if re.search(pattern, code, re.M):
                return message
        return None

    # -- completion and completeness ---------------------------------------------------------
    def completion(self, code: str, cursor_pos: Optional[int] = None) -> Optional[CompletionQuery]:
        """The word before the cursor and the command completing it (``None``: nothing safe to do)."""
        pos = len(code) if cursor_pos is None else cursor_pos
        before = code[:pos]
        m = re.search(self.word, before)
        if not m:
            return None
        word = m.group("word")
        start = m.start("word")
        b64 = _b64(word)
        return CompletionQuery(word, start, pos,
                               lambda nonce: self.complete.format(nonce=nonce, b64=b64) + "\n")

    @staticmethod
    def parse_completions(text: str) -> list[str]:
        """The matches a completion command printed."""
        m = re.search(re.escape(COMPLETIONS_BEGIN) + r"([A-Za-z0-9+/=\s]*)" + re.escape(COMPLETIONS_END), text)
        if not m:
            return []
        raw = base64.b64decode("".join(m.group(1).split())).decode("utf-8", "replace")
        return [x for x in dict.fromkeys(raw.split("\n")) if x]

    def is_complete(self, code: str) -> IsComplete:
        """Is ``code`` complete, by the language's own parser (``unknown`` if not available here)."""
        try:
            return self.checker(code)
        except (OSError, subprocess.SubprocessError):
            return IsComplete("unknown")

    def language_info(self) -> dict:
        info = {"name": self.language, "mimetype": self.mimetype, "file_extension": self.file_extension}
        if self.pygments_lexer:
            info["pygments_lexer"] = self.pygments_lexer
        if self.codemirror_mode:
            info["codemirror_mode"] = self.codemirror_mode
        return info


# -- completeness checkers, run locally when the interpreter is here ----------------------------
def _run_checker(argv: list[str], code: str) -> Optional[subprocess.CompletedProcess]:
    if shutil.which(argv[0]) is None:
        return None
    return subprocess.run(argv, input=code, capture_output=True, text=True, timeout=10,
                          stdin=None, errors="replace")


def _indent_of(code: str) -> str:
    last = code.rstrip("\n").rsplit("\n", 1)[-1]
    return last[:len(last) - len(last.lstrip())]


def check_bash(code: str) -> IsComplete:
    """``bash -n``: 'unexpected end of file' means more is needed; a trailing backslash too."""
    if re.search(r"(?<!\\)(\\\\)*\\\n?\Z", code):
        return IsComplete("incomplete", _indent_of(code))
    result = _run_checker(["bash", "-n"], code)
    if result is None:
        return IsComplete("unknown")
    err = result.stderr
    if "unexpected end of file" in err or "unexpected EOF" in err or (
            "here-document" in err and "end-of-file" in err):
        return IsComplete("incomplete", _indent_of(code) or "  ")
    return IsComplete("complete" if result.returncode == 0 else "invalid")


def check_python(code: str) -> IsComplete:
    """``codeop``, as the Python REPL decides whether to show its continuation prompt."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compiled = codeop.compile_command(code, "<cell>", "exec")
    except (SyntaxError, OverflowError, ValueError):
        return IsComplete("invalid")
    if compiled is not None:
        return IsComplete("complete")
    indent = _indent_of(code)
    if code.rstrip().endswith(":"):
        indent += "    "
    return IsComplete("incomplete", indent)


_RUBY_CHECK = r"""
code = STDIN.read
begin
  RubyVM::InstructionSequence.compile(code)
  puts "complete"
rescue SyntaxError => e
  puts(e.message =~ /end-of-input|meets end of file|unterminated|unexpected end-of-file/ ? "incomplete" : "invalid")
end
"""


def check_ruby(code: str) -> IsComplete:
    """Ruby's own compiler (without running anything): 'end-of-input' means more is needed."""
    result = _run_checker(["ruby", "-e", _RUBY_CHECK], code)
    if result is None or not result.stdout.strip():
        return IsComplete("unknown")
    status = result.stdout.split()[-1]
    return IsComplete(status, _indent_of(code) + "  " if status == "incomplete" else "")


_NODE_CHECK = r"""
const vm = require('vm');
const code = require('fs').readFileSync(0, 'utf8');
const verdict = (src) => { try { new vm.Script(src); return 'complete'; } catch (e) {
  if (!(e instanceof SyntaxError)) return 'invalid';
  return /Unexpected end of input|Unterminated template|missing \) after argument list$/.test(e.message)
    ? 'incomplete' : 'invalid'; } };
let v = verdict(code);
if (v === 'invalid' && verdict('(async () => {\n' + code + '\n})()') === 'complete') v = 'complete';
console.log(v);
"""


def check_node(code: str) -> IsComplete:
    """``vm.Script`` (top-level ``await`` allowed, as in the REPL)."""
    result = _run_checker(["node", "-e", _NODE_CHECK], code)
    if result is None or not result.stdout.strip():
        return IsComplete("unknown")
    status = result.stdout.split()[-1]
    return IsComplete(status, _indent_of(code) + "  " if status == "incomplete" else "")


def _bash_word_is_safe(word: str) -> bool:
    """A bash word is completed only if nothing in it could run code when expanded."""
    if any(s in word for s in ("`", "$(", "${", "'", '"', "\\", ";", "|", "&", "<", ">", "(", ")")):
        return False
    if "$" in word[1:]:
        return False
    return True




# -- bash ---------------------------------------------------------------------------------------
_BASH_INIT = r"""
set +o history +o histexpand 2>/dev/null; unset HISTFILE
stty -echo 2>/dev/null
bind 'set enable-bracketed-paste off' 2>/dev/null
IGNOREEOF=10
export -n PS1 2>/dev/null
exec {__dk_null}</dev/null
__dk_tok=@TOKEN@
__dk_nonce=@NONCE@
__dk_fd=0
__dk_pre() {
  if [[ $1 == 1 ]]; then __dk_fd=0; else __dk_fd=$__dk_null; fi
  __dk_c=$(builtin printf %s "$2" | command base64 -d)
}
__dk_post() {
  local __dk_s=$?
  [[ $1 ]] && __dk_nonce=$1
  PS1='\e]5799;'"$__dk_tok;p;$__dk_nonce;$__dk_s;"'\a'
  PS2= PS0=
  unset PROMPT_COMMAND __dk_c
  PROMPT_COMMAND=__dk_post
  return $__dk_s
}
__dk_want() {
  { builtin printf '\e]5799;%s;i;%s;%s\a' "$__dk_tok" "$1" "$(builtin printf %s "$2" | command base64 -w0)" >/dev/tty; } 2>/dev/null
}
display() {
  local __dk_t= __dk_b
  if [[ $1 == -t ]]; then __dk_t=$2; shift 2; fi
  if [[ -z $__dk_t ]]; then
    case ${1,,} in
      *.png) __dk_t=image/png ;; *.jpg|*.jpeg) __dk_t=image/jpeg ;; *.gif) __dk_t=image/gif ;;
      *.svg) __dk_t=image/svg+xml ;; *.html|*.htm) __dk_t=text/html ;; *.md) __dk_t=text/markdown ;;
      *.json) __dk_t=application/json ;; *) __dk_t=text/plain ;;
    esac
  fi
  __dk_b=$(command base64 -w0 -- "${1:--}") || return
  builtin printf '\e]5799;%s;d;%s;%s\a' "$__dk_tok" "$__dk_t" "$__dk_b"
}

read() {
  local __dk_o __dk_p= __dk_f= __dk_u=0 __dk_t= OPTIND=1 OPTARG __dk_a=()
  while getopts ':a:d:ei:n:N:p:rst:u:' __dk_o; do
    case $__dk_o in
      p) __dk_p=$OPTARG ;;
      s) __dk_f+=p; __dk_a+=(-s) ;;
      u) __dk_u=$OPTARG; __dk_a+=(-u "$OPTARG") ;;
      t) __dk_t=$OPTARG; __dk_a+=(-t "$OPTARG") ;;
      n|N) __dk_f+=n; __dk_a+=("-$__dk_o" "$OPTARG") ;;
      a|d|i) __dk_a+=("-$__dk_o" "$OPTARG") ;;
      :|\?) builtin read "$@"; return ;;
      *) __dk_a+=("-$__dk_o") ;;
    esac
  done
  shift $((OPTIND - 1))
  if [[ $__dk_t != 0 && -t $__dk_u ]]; then
    __dk_want "$__dk_f" "$__dk_p"
    builtin read "${__dk_a[@]}" "$@"
  else
    builtin read "$@"
  fi
}
__dk_complete() {
  __dk_nonce=$1
  local __dk_w __dk_m=() __dk_x
  __dk_w=$(builtin printf %s "$2" | command base64 -d)
  if [[ $__dk_w == \$* ]]; then
    while IFS= builtin read -r __dk_x; do __dk_m+=("\$$__dk_x"); done < <(compgen -v -- "${__dk_w#\$}")
  else
    if [[ $3 == cmd ]]; then
      while IFS= builtin read -r __dk_x; do [[ $__dk_x == __dk* ]] || __dk_m+=("$__dk_x"); done < <(compgen -c -- "$__dk_w")
    fi
    if [[ $3 != cmd || $__dk_w == */* ]]; then
      while IFS= builtin read -r __dk_x; do
        [[ -d $__dk_x ]] && __dk_x+=/
        __dk_m+=("$__dk_x")
      done < <(compgen -f -- "$__dk_w")
    fi
  fi
  builtin printf '<dk-completions>%s</dk-completions>\n' "$( ((${#__dk_m[@]})) && builtin printf '%s\n' "${__dk_m[@]}" | LC_ALL=C sort -u | command base64 -w0)"
}
PROMPT_COMMAND=__dk_post
"""


def _bash_completion_kind(before: str, start: int) -> str:
    prev = before[:start].rstrip(" \t")
    return "cmd" if not prev or prev[-1] in ";|&(\n" or prev.endswith(("then", "do", "else")) else "file"


class _BashProfile(ReplProfile):
    def completion(self, code: str, cursor_pos: Optional[int] = None) -> Optional[CompletionQuery]:
        query = super().completion(code, cursor_pos)
        if query is None or not _bash_word_is_safe(query.word):
            return None
        kind = _bash_completion_kind(code, query.start)
        b64 = _b64(query.word)
        return dataclasses.replace(
            query, command=lambda nonce: f"__dk_complete {nonce} {b64} {kind}\n")


BASH = _BashProfile(
    name="bash", language="bash", display_name="Dyno Bash",
    command="PS1='dk-ready$ ' exec bash --noprofile --norc --noediting -i",
    ready=r"dk-ready\$ ",
    init=_BASH_INIT,
    boot='eval "$(builtin printf %s {chunks} | command base64 -d)"',
    cell='__dk_pre {stdin} {chunks}; eval -- "$__dk_c" 0<&$__dk_fd; __dk_post {nonce}',
    complete="",
    word=r"(?P<word>\$?[^\s;|&<>()]*)\Z",
    checker=check_bash,
    join="\\\n",
    file_extension=".sh", mimetype="text/x-sh", pygments_lexer="bash", codemirror_mode="shell",
    tty_reset="stty sane -echo 2>/dev/null",
    refuse=(
        (r"(^|[;&|({]|\bthen|\bdo|\belse)\s*set\s+([-+]\w*\s+)*[-+]o\s+(emacs|vi)\b",
         "[dynokernel] line editing (set -o emacs/vi) cannot be switched in a notebook: the kernel sends "
         "whole cells, not keystrokes.\n"),
        (r"(^|[;&|({]|\bthen|\bdo|\belse)\s*exec\s+(\S*/)?(ba|z|k|c|tc|da|fi)?sh\b",
         "[dynokernel] exec of a new shell would leave the kernel without its prompt; run the shell "
         "without exec, or restart the kernel.\n"),
    ),
)

# -- python -------------------------------------------------------------------------------------
_PYTHON_INIT = r'''
def __dk_setup(token, nonce):
    import ast, base64, builtins, getpass, io, linecache, os, sys

    class Prompt:
        def __init__(self, dk):
            self.dk = dk

        def __str__(self):
            dk = self.dk
            return f"\x1b]5799;{dk.token};p;{dk.nonce};{dk.status};{dk.ename}\x07"

    class DynoKernelRepl:
        """The REPL side of dynokernel (see dynokernel/kernel/profiles.py)."""

        def __init__(self):
            self.token, self.nonce, self.status, self.ename = token, nonce, 0, ""
            self.stdin, self.count = True, 0

        def run(self, nonce, stdin, *chunks):
            # the nonce reaches the prompt only after the cell's code has run: it cannot spoof it
            self.status, self.ename, self.stdin = 0, "", bool(stdin)
            src = base64.b64decode("".join(chunks)).decode("utf-8", "replace")
            self.count += 1
            name = f"<cell {self.count}>"
            linecache.cache[name] = (len(src), None, src.splitlines(True), name)
            saved = None if stdin else self._stdin_to_devnull()
            try:
                self._exec(src, name)
            except SystemExit:
                raise
            except BaseException as e:
                self.status, self.ename = 1, type(e).__name__
                self._show(e, name)
            finally:
                if saved is not None:
                    os.dup2(saved, 0)
                    os.close(saved)
                self.quiet_tty()
                self.nonce = nonce

        def _exec(self, src, name):
            tree = ast.parse(src, name, "exec")
            main = sys.modules["__main__"].__dict__
            last = None
            if tree.body and isinstance(tree.body[-1], ast.Expr):
                last = ast.Interactive([tree.body.pop()])
            if tree.body:
                exec(compile(tree, name, "exec"), main)
            if last is not None:
                exec(compile(last, name, "single"), main)

        def _show(self, e, name):
            tb = e.__traceback__
            while tb is not None and tb.tb_frame.f_code.co_filename != name:
                tb = tb.tb_next
            e = e.with_traceback(tb)
            sys.last_type, sys.last_value, sys.last_traceback = type(e), e, tb
            try:
                sys.stdout.flush()
            except Exception:
                pass
            if sys.excepthook is sys.__excepthook__:
                import traceback
                traceback.print_exception(type(e), e, tb)
            else:
                sys.excepthook(type(e), e, tb)

        def _stdin_to_devnull(self):
            saved = os.dup(0)
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.close(null)
            return saved

        def quiet_tty(self):
            try:
                import termios
                attrs = termios.tcgetattr(0)
                want = (attrs[3] & ~termios.ECHO) | termios.ICANON | termios.ISIG
                if want != attrs[3]:
                    attrs[3] = want
                    termios.tcsetattr(0, termios.TCSANOW, attrs)
            except Exception:
                pass

        def want_input(self, prompt, flags=""):
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except Exception:
                    pass
            b64 = base64.b64encode(str(prompt).encode("utf-8", "replace")).decode()
            try:
                fd = os.open("/dev/tty", os.O_WRONLY)
                try:
                    os.write(fd, f"\x1b]5799;{self.token};i;{flags};{b64}\x07".encode())
                finally:
                    os.close(fd)
                return True
            except OSError:
                return False

        def complete(self, nonce, b64):
            import rlcompleter
            self.nonce, self.status, self.ename = nonce, 0, ""
            text = base64.b64decode(b64).decode("utf-8", "replace")
            matches = []
            if text:
                completer = rlcompleter.Completer(sys.modules["__main__"].__dict__)
                for i in range(1000):
                    m = completer.complete(text, i)
                    if m is None:
                        break
                    matches.append(m)
            out = base64.b64encode("\n".join(matches).encode()).decode()
            print(f"<dk-completions>{out}</dk-completions>")

    dk = DynoKernelRepl()
    builtins.__dk__ = dk
    sys.ps1, sys.ps2 = Prompt(dk), ""

    class Stderr(io.TextIOWrapper):
        """sys.stderr with each write marked as standard error (after what stdout has so far)."""

        def write(self, text):
            try:
                sys.stdout.flush()
            except Exception:
                pass
            super().write(f"\x1b]5799;{token};s;2\x07{text}\x1b]5799;{token};s;1\x07")
            super().flush()
            return len(text)

    sys.stderr.flush()
    sys.stderr = Stderr(open(os.dup(2), "wb", buffering=0), encoding=sys.stderr.encoding,
                        errors="backslashreplace", line_buffering=True)

    reprs = (("_repr_html_", "text/html"), ("_repr_markdown_", "text/markdown"), ("_repr_svg_", "image/svg+xml"),
             ("_repr_png_", "image/png"), ("_repr_jpeg_", "image/jpeg"), ("_repr_latex_", "text/latex"),
             ("_repr_json_", "application/json"))

    def display(*objs):
        """Show each object as rich output in the notebook (its _repr_*_ methods), as IPython does."""
        import json
        for obj in objs:
            bundle = {}
            if hasattr(obj, "_repr_mimebundle_"):
                found = obj._repr_mimebundle_()
                bundle.update(found[0] if isinstance(found, tuple) else found or {})
            for method, mime in reprs:
                if mime not in bundle and hasattr(obj, method):
                    value = getattr(obj, method)()
                    if value is not None:
                        bundle[mime] = value
            bundle.setdefault("text/plain", repr(obj))
            fields = []
            for mime, value in bundle.items():
                if isinstance(value, str) and mime.startswith("image/") and mime != "image/svg+xml":
                    raw = base64.b64decode(value)
                elif isinstance(value, (bytes, bytearray)):
                    raw = bytes(value)
                elif isinstance(value, str):
                    raw = value.encode("utf-8", "replace")
                else:
                    raw = json.dumps(value).encode()
                fields.append(f"{mime};{base64.b64encode(raw).decode()}")
            sys.stdout.flush()
            sys.stdout.write(f"\x1b]5799;{dk.token};d;{';'.join(fields)}\x07")
            sys.stdout.flush()
    builtins.display = display

    # `python -i` imports GNU readline whatever the interactive hook says. Readline reads the
    # terminal in raw mode, where an end-of-file typed before it starts reading turns into a NUL;
    # the plain stdio reader of the REPL keeps the terminal line-buffered like the other REPLs.
    try:
        import ctypes
        ctypes.c_void_p.in_dll(ctypes.pythonapi, "PyOS_ReadlineFunctionPointer").value = None
    except Exception:
        pass

    plain_input = builtins.input
    def input(prompt=""):
        if dk.stdin and os.isatty(0) and sys.stdin is sys.__stdin__ and dk.want_input(prompt):
            line = sys.stdin.readline()
            if not line:
                raise EOFError("EOF when reading a line")
            return line[:-1] if line.endswith("\n") else line
        return plain_input(prompt)
    input.__doc__ = plain_input.__doc__
    builtins.input = input

    plain_getpass = getpass.getpass
    def dk_getpass(prompt="Password: ", stream=None):
        # The terminal's echo is off already. getpass itself would set it with TCSAFLUSH, which
        # can throw away an answer that arrives first, so read /dev/tty here without touching it.
        if not dk.stdin:
            raise EOFError("no input: this cell cannot read from the terminal")
        try:
            fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
        except OSError:
            return plain_getpass(prompt, stream)
        try:
            if not dk.want_input(prompt, "p"):
                return plain_getpass(prompt, stream)
            line = b""
            while not line.endswith(b"\n"):
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise EOFError
                line += chunk
            os.write(fd, b"\n")
            return line[:-1].decode("utf-8", "replace")
        finally:
            os.close(fd)
    dk_getpass.__doc__ = plain_getpass.__doc__
    getpass.getpass = dk_getpass
    dk.quiet_tty()

__dk_setup("@TOKEN@", "@NONCE@")
del __dk_setup
'''

PYTHON = ReplProfile(
    name="python", language="python", display_name="Dyno Python",
    command=("exec python3 -i -q -c "
             + shlex.quote("import sys; sys.__dict__.pop('__interactivehook__', None)")),
    ready=r">>> ",
    init=_PYTHON_INIT,
    boot="exec(__import__('base64').b64decode(\n{chunks}\n).decode())",
    cell="__dk__.run('{nonce}', {stdin},\n{chunks})",
    complete="__dk__.complete('{nonce}', '{b64}')",
    word=r"(?P<word>[A-Za-z_][\w.]*|)\Z",
    checker=check_python,
    chunk="'{}'",
    file_extension=".py", mimetype="text/x-python", pygments_lexer="python3",
    codemirror_mode="python",
)

# -- irb and the Rails console ------------------------------------------------------------------
_RUBY_INIT = r"""
require "io/console" rescue nil
module DK__
  @token = "@TOKEN@"
  @nonce = "@NONCE@"
  @status = 0
  @ename = ""
  @stdin = true
  @count = 0
  class << self
    attr_reader :stdin

    def prompt
      "\e]5799;#{@token};p;#{@nonce};#{@status};#{@ename}\a"
    end

    def run(nonce, stdin, chunks)
      @status, @ename, @stdin = 0, "", stdin == 1
      ctx = IRB.CurrentContext
      ctx.echo = @echo unless @echo.nil?
      @echo = nil
      code = chunks.join.unpack1("m").force_encoding(Encoding::UTF_8)
      @count += 1
      saved = $stdin
      $stdin = File.open(File::NULL) unless @stdin
      begin
        ctx.workspace.binding.eval(code, "(cell #{@count})", 1)
      rescue Exception => e
        @status = 1
        @ename = e.class.name.to_s
        if (bt = e.backtrace)
          e.set_backtrace(bt.take_while { |line| !line.include?("(dynokernel)") }) rescue nil
        end
        raise
      ensure
        $stdin = saved
        quiet_tty
        @nonce = nonce
        ctx.prompt_i = prompt
      end
    end

    def want_input(prompt_text, flags = "")
      $stdout.flush
      $stderr.flush
      File.open("/dev/tty", "w") { |tty| tty.write("\e]5799;#{@token};i;#{flags};#{[prompt_text.to_s].pack('m0')}\a") }
      true
    rescue SystemCallError
      false
    end

    def quiet_tty
      STDIN.echo = false if STDIN.tty? && STDIN.respond_to?(:echo=) && STDIN.echo?
    rescue StandardError
      nil
    end

    def complete(nonce, b64)
      @nonce, @status, @ename = nonce, 0, ""
      ctx = IRB.CurrentContext
      word = b64.unpack1("m").force_encoding(Encoding::UTF_8)
      b = ctx.workspace.binding
      matches =
        if (m = word.match(/\A(.+)(\.|::)([^.:]*)\z/))
          recv, sep, part = m[1], m[2], m[3]
          obj = receiver(recv, b)
          names = obj.nil? ? [] : (sep == "::" && obj.is_a?(Module) ? obj.constants + obj.singleton_methods : obj.methods)
          names.map(&:to_s).select { |n| n.start_with?(part) }.map { |n| "#{recv}#{sep}#{n}" }
        else
          names = b.local_variables + b.receiver.methods + b.receiver.private_methods + Object.constants +
                  b.receiver.instance_variables + global_variables
          names.map(&:to_s).select { |n| n.start_with?(word) }
        end
      puts "<dk-completions>#{[matches.uniq.sort.join("\n")].pack('m0')}</dk-completions>"
      @echo = ctx.echo? if @echo.nil?
      ctx.echo = false   # and return the last value: irb's _ stays what it was
      ctx.prompt_i = prompt
      ctx.last_value
    end

    # Only variables and constants are evaluated to complete after them: no method runs.
    def receiver(text, b)
      case text
      when /\A[a-z_]\w*\z/ then b.local_variable_defined?(text) ? b.local_variable_get(text) : nil
      when /\A@[a-z_]\w*\z/i then b.receiver.instance_variable_get(text)
      when /\A\$\w+\z/ then b.eval(text)
      when /\A(::)?[A-Z]\w*(::[A-Z]\w*)*\z/ then Object.const_get(text.sub(/\A::/, ""))
      end
    rescue StandardError, ScriptError
      nil
    end
  end
end

# $stderr's writes, marked as standard error (irb's prompt is on stdout: this keeps them in order)
class DK__Stderr
  def initialize(io, token)
    @io, @begin, @end = io, "\e]5799;#{token};s;2\a", "\e]5799;#{token};s;1\a"
  end

  def write(*parts)
    $stdout.flush
    @io.write(@begin, *parts, @end) - @begin.bytesize - @end.bytesize
  end

  def <<(obj) = tap { write(obj.to_s) }
  def print(*objs) = write(*objs.map(&:to_s)) && nil
  def printf(*args) = write(format(*args)) && nil

  def puts(*objs)
    require "stringio"
    text = StringIO.new.tap { |out| out.puts(*objs) }.string
    write(text)
    nil
  end

  def method_missing(name, *args, &block) = @io.send(name, *args, &block)
  def respond_to_missing?(name, include_private = false) = @io.respond_to?(name, include_private)
end
$stderr = DK__Stderr.new(STDERR, "@TOKEN@")

module DynoKernel
  # Rich output in the notebook: DynoKernel.display(html, "text/html"), or an object's to_html.
  def self.display(obj, mime = nil)
    bundle = {}
    if mime
      bundle[mime] = obj.to_s
    elsif obj.respond_to?(:to_html)
      bundle["text/html"] = obj.to_html
    end
    bundle["text/plain"] ||= obj.inspect
    fields = bundle.map { |type, data| "#{type};#{[data.to_s].pack('m0')}" }
    $stdout.write("\e]5799;@TOKEN@;d;#{fields.join(';')}\a")
    $stdout.flush
    nil
  end
end

module Kernel
  alias_method :__dk_plain_gets, :gets
  private :__dk_plain_gets
  def gets(*args)
    DK__.want_input("") if DK__.stdin && $stdin.tty?
    __dk_plain_gets(*args)
  end
  private :gets
end

class << STDIN
  alias_method :__dk_plain_gets, :gets
  def gets(*args)
    return nil unless DK__.stdin
    DK__.want_input("") if tty?
    __dk_plain_gets(*args)
  end
end

class Exception
  alias_method :__dk_full_message, :full_message
  def full_message(highlight: false, **opts)
    __dk_full_message(highlight: highlight, **opts)
  end
end

IRB.conf[:PROMPT][:DYNOKERNEL] = {
  PROMPT_I: DK__.prompt, PROMPT_N: "", PROMPT_S: "", PROMPT_C: "", RETURN: "=> %s\n"
}
IRB.CurrentContext.prompt_mode = :DYNOKERNEL
IRB.CurrentContext.auto_indent_mode = false if IRB.CurrentContext.respond_to?(:auto_indent_mode=)
IRB.conf[:SAVE_HISTORY] = nil
DK__.quiet_tty
nil
"""

_IRB_FLAGS = "--nomultiline --nosingleline --nocolorize --noautocomplete"

IRB = ReplProfile(
    name="irb", language="ruby", display_name="Dyno Ruby (irb)",
    command=f"IRBRC=/dev/null exec irb {_IRB_FLAGS}",
    ready=r"[\w.-]*\([^)\n]*\)[^\n]*?> \Z",
    init=_RUBY_INIT,
    boot="eval(%w[\n{chunks}\n].join.unpack1('m').force_encoding('UTF-8'), nil, '(dynokernel)')",
    cell="DK__.run('{nonce}', {stdin}, %w[\n{chunks}\n])",
    complete="DK__.complete('{nonce}', '{b64}')",
    word=r"(?P<word>(?:\$|@{1,2}|::)?[A-Za-z_][\w]*(?:(?:\.|::)[A-Za-z_]\w*[?!]?)*(?:\.|::)?|)\Z",
    checker=check_ruby,
    file_extension=".rb", mimetype="text/x-ruby", pygments_lexer="ruby", codemirror_mode="ruby",
)

RAILS = dataclasses.replace(
    IRB, name="rails", display_name="Dyno Rails console",
    # one-line values, as in Heroku's docs: => #<Widget id: 1, name: "Test", ...>
    init_extra="IRB.CurrentContext.inspect_mode = :inspect\nnil\n",
    command=(f"export IRBRC=/dev/null; if [ -x bin/rails ]; then exec bin/rails console -- {_IRB_FLAGS}; "
             f"else exec rails console -- {_IRB_FLAGS}; fi"),
    startup_timeout=90.0,
)

# -- node ---------------------------------------------------------------------------------------
_NODE_START = ("const r=require('repl').start({prompt:'dk-ready> ',useColors:false,terminal:false,"
               "ignoreUndefined:true,breakEvalOnSigint:true});r.context.__dk_repl=r")

_NODE_INIT = r"""
(() => {
  const r = __dk_repl;
  delete r.context.__dk_repl;
  const repl = require('repl');
  const token = '@TOKEN@';
  let nonce = '@NONCE@', next = nonce, status = 0, ename = '', chunks = [];
  const prompt = () => `\x1b]5799;${token};p;${nonce};${status};${ename}\x07`;
  const plainEval = r.eval;
  let running = false;
  // Ctrl-C while a cell awaits: the REPL's own SIGINT queue rejects the await; idle: ignored.
  const onSigint = () => { if (running) r.emit('SIGINT'); };
  const armSigint = () => { process.removeListener('SIGINT', onSigint); process.on('SIGINT', onSigint); };
  r._domain.prependListener('error', (e) => {
    if (e && e.code === 'ERR_SCRIPT_EXECUTION_INTERRUPTED') e.stack = `${e.name}: ${e.message}`;
    nonce = next; status = 1; ename = (e && e.name) || 'Error'; r.setPrompt(prompt());
  });
  const complete = (word, done) => {
    if (!/^[\w$]*(\.[\w$]+)*\.?[\w$]*$/.test(word)) return done([]);
    r.completer(word, (err, res) => {
      const list = (!err && res && res[0]) || [];
      const base = word.slice(0, word.length - ((res && res[1]) || '').length);
      done(list.filter((x) => x).map((x) => base + x));
    });
  };
  r.eval = function (cmd, context, file, cb) {
    const m = /^\/\/dk:([crx]):([^\n]*)\n?$/.exec(cmd);
    if (!m) return plainEval.call(this, cmd, context, file, cb);
    if (m[1] === 'c') { chunks.push(m[2]); return; }
    const [n, arg] = m[2].split(':');
    status = 0; ename = '';
    if (m[1] === 'x') {
      nonce = n;
      return complete(Buffer.from(arg, 'base64').toString(), (list) => {
        const b64 = Buffer.from(list.join('\n')).toString('base64');
        r.output.write(`<dk-completions>${b64}</dk-completions>\n` + prompt());
      });
    }
    const code = Buffer.from(chunks.join(''), 'base64').toString('utf8');
    chunks = [];
    next = n;   // reaches the prompt only after the cell's code has run
    running = true;
    process.removeListener('SIGINT', onSigint);   // the REPL's SIGINT watchdog runs the code
    plainEval.call(this, code, context, file, (err, value) => {
      running = false;
      armSigint();
      if (err instanceof repl.Recoverable) err = err.err;
      if (err && err.code === 'ERR_SCRIPT_EXECUTION_INTERRUPTED') err.stack = `${err.name}: ${err.message}`;
      if (err) { status = 1; ename = err.name || 'Error'; }
      nonce = next;
      r.setPrompt(prompt());
      cb(err, value);
    });
    armSigint();   // an awaited promise: Ctrl-C rejects it (the watchdog has stopped by now)
  };
  const errWrite = process.stderr.write.bind(process.stderr);
  process.stderr.write = (chunk, ...rest) => {
    errWrite(`\x1b]5799;${token};s;2\x07`);
    const written = errWrite(chunk, ...rest);
    errWrite(`\x1b]5799;${token};s;1\x07`);
    return written;
  };
  r.context.console = require('console');   // the process's console: console.error is stderr again
  // Rich output in the notebook: display('<b>hi</b>', 'text/html'); objects as JSON by default.
  r.context.display = (value, mime) => {
    const bundle = {};
    if (mime) bundle[mime] = Buffer.isBuffer(value) ? value : String(value);
    else if (value !== null && typeof value === 'object') bundle['application/json'] = JSON.stringify(value);
    bundle['text/plain'] = bundle['text/plain'] || require('util').inspect(value);
    const fields = Object.entries(bundle).map(([type, data]) => `${type};${Buffer.from(data).toString('base64')}`);
    process.stdout.write(`\x1b]5799;${token};d;${fields.join(';')}\x07`);
  };
  armSigint();
  r.setPrompt(prompt());
})()
"""

NODE = ReplProfile(
    name="node", language="javascript", display_name="Dyno Node.js",
    command="exec node -e " + shlex.quote(_NODE_START),
    ready=r"dk-ready> ",
    init=_NODE_INIT,
    boot="eval(Buffer.from([\n{chunks}\n].join(''), 'base64').toString())",
    cell="{chunks}\n//dk:r:{nonce}:{stdin}",
    complete="//dk:x:{nonce}:{b64}",
    word=r"(?P<word>[\w$]+(?:\.[\w$]*)*|)\Z",
    checker=check_node,
    chunk="//dk:c:{}",
    boot_chunk="'{}',",
    file_extension=".js", mimetype="application/javascript", pygments_lexer="javascript",
    codemirror_mode="javascript",
)

PROFILES: dict[str, ReplProfile] = {p.name: p for p in (BASH, PYTHON, IRB, RAILS, NODE)}


def get_profile(name: str) -> ReplProfile:
    """The profile called ``name`` (bash, python, irb, rails, node)."""
    try:
        return PROFILES[name]
    except KeyError:
        raise KeyError(f"no REPL profile {name!r}; known: {', '.join(PROFILES)}") from None
