"""What a submission shows, made safe to keep and to render: capped, plain and sanitised.

Everything here runs in the trusted grading process on what the sandbox sent or the student wrote,
before it lands in the autograded notebook (which feedback and formgrader render):

- outputs are rebuilt from known fields only, and capped in characters per cell and per notebook,
  error messages and tracebacks included; images (figures) have caps of their own: size per image,
  images per cell, and all images of the notebook; past a cap an output is cut or dropped with a note;
- only inert MIME types survive (plain text, LaTeX, PNG/JPEG/GIF with valid base64); HTML and
  Markdown outputs are sanitised (no script, no event handlers, no active content), anything else
  (JavaScript, SVG, widgets) is dropped;
- Markdown and raw cells are sanitised the same way (nbgrader's feedback and formgrader templates
  render Markdown cells unsanitised): a cell whose rendering is inert is kept as written, another
  is replaced by its sanitised rendering; cell attachments and oversized cells are dropped with a
  note. A notebook that hits a cap is still graded.
"""

import re
from html import escape as html_escape
from html.parser import HTMLParser

import bleach
import nbformat

from ..memo import per_source
from .limits import IMAGE_CHARS, IMAGES_PER_CELL, NOTEBOOK_IMAGE_CHARS

IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif")
TEXT_TYPES = ("text/plain", "text/latex")
BASE64 = re.compile(r"[A-Za-z0-9+/=\s]*")
MIN_OUTPUT_COST = 100          # every output costs at least this much, so empty ones cannot pile up
ERROR_TEXT_CHARS = 4000        # of an error's message, and of each traceback line
TRACEBACK_LINES = 60

# Markup that cannot act: no script, style, iframe, form, svg or event handler; links to the web only.
SAFE_TAGS = frozenset({
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "div", "dl", "dt", "em", "h1", "h2", "h3", "h4",
    "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p", "pre", "s", "span", "strong", "sub", "summary", "sup", "table",
    "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul"})
PLAIN_ATTRIBUTES = frozenset({"class", "title", "alt", "align", "width", "height", "colspan", "rowspan", "id", "start"})


def _scheme(url):
    """The scheme of a URL as a browser reads it (tabs, newlines and controls ignored), '' if relative."""
    url = re.sub(r"[\x00-\x20]", "", url or "").lower()
    match = re.match(r"([a-z][a-z0-9+.-]*):", url)
    return match.group(1) if match else ""


def _allowed(tag, name, value):
    if name in PLAIN_ATTRIBUTES:
        return True
    if tag == "a" and name == "href":
        return _scheme(value) in ("http", "https", "mailto", "")
    if tag == "img" and name == "src":
        return _scheme(value) in ("http", "https") or bool(re.fullmatch(r"data:image/(png|jpeg|gif);base64,[A-Za-z0-9+/=\s]*", value.strip()))
    return False


class _Inert(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.inert = True

    def handle_starttag(self, tag, attrs):
        if tag not in SAFE_TAGS or not all(_allowed(tag, name, value or "") for name, value in attrs):
            self.inert = False

    handle_startendtag = handle_starttag

    def unknown_decl(self, data):
        self.inert = False

    def handle_pi(self, data):
        self.inert = False


def is_inert(html):
    """True when `html` has only safe tags and attributes (nothing a browser would run or load from elsewhere)."""
    parser = _Inert()
    parser.feed(html)
    parser.close()
    return parser.inert


@per_source
def sanitise_html(html):
    """`html` unchanged when inert; otherwise with every active part removed."""
    if is_inert(html):
        return html
    return bleach.clean(html, tags=SAFE_TAGS, attributes=_allowed, protocols=["http", "https", "mailto", "data"], strip=True,
                        strip_comments=True)


@per_source
def sanitise_markdown(source):
    """Markdown unchanged when what it renders is inert; otherwise its rendering, sanitised (HTML is valid Markdown)."""
    from nbconvert.filters.markdown import markdown2html

    try:
        html = markdown2html(source)
    except Exception:  # noqa: BLE001 - Markdown the renderer cannot read is shown as plain text
        return "<pre>" + html_escape(source) + "</pre>"
    return source if is_inert(html) else sanitise_html(html)


class OutputBudget:
    """Characters of a submission's output kept: `per_cell`, and `per_notebook` over all cells.

    Images are counted apart from text (a figure is far larger than any text output): at most
    IMAGE_CHARS each, IMAGES_PER_CELL per cell and NOTEBOOK_IMAGE_CHARS in all.
    """

    def __init__(self, per_cell, per_notebook):
        self.per_cell, self.left, self.images_left = per_cell, per_notebook, NOTEBOOK_IMAGE_CHARS

    def keep(self, raw_outputs):
        """nbformat outputs built from untrusted `raw_outputs`, within the caps."""
        kept, room, dropped, images, images_dropped = [], min(self.per_cell, self.left), 0, 0, 0
        for raw in raw_outputs if isinstance(raw_outputs, list) else []:
            output = clean_output(raw)
            image = image_size(output)
            cost = max(MIN_OUTPUT_COST, output_size(output) - image)
            if image and (image > min(IMAGE_CHARS, self.images_left) or images == IMAGES_PER_CELL):
                images_dropped += 1
            elif cost <= room:
                kept.append(output)
                room -= cost
                self.left -= cost
                self.images_left -= image
                images += bool(image)
            elif output.output_type == "stream" and room > MIN_OUTPUT_COST:
                output.text = output.text[:room - MIN_OUTPUT_COST]
                kept.append(output)
                self.left -= room
                room, dropped = 0, dropped + 1
            else:
                dropped += 1
        if dropped:
            which = "this cell's" if self.left > 0 else "the notebook's"
            kept.append(nbformat.v4.new_output("stream", name="stdout", text=f"\n[output truncated: {which} output is over the limit "
                                               f"({self.per_cell} characters per cell); {dropped} output(s) cut or dropped]\n"))
        if images_dropped:
            kept.append(nbformat.v4.new_output("stream", name="stdout", text=f"\n[{images_dropped} image(s) dropped: at most {IMAGES_PER_CELL} "
                                               f"per cell, {IMAGE_CHARS} characters each, {NOTEBOOK_IMAGE_CHARS} in the notebook]\n"))
        return kept


def output_size(output):
    if output.output_type == "stream":
        return len(output.text)
    if output.output_type == "error":
        return len(output.ename) + len(output.evalue) + sum(len(line) for line in output.traceback)
    return sum(len(value) for value in output.get("data", {}).values())


def image_size(output):
    """Characters of the images in a display or result (0 for any other output)."""
    return sum(len(value) for mime, value in output.get("data", {}).items() if mime in IMAGE_TYPES)


def clean_output(raw):
    """An nbformat output built from what the sandbox sent: known fields, inert content only."""
    kind = raw.get("output_type") if isinstance(raw, dict) else None
    if kind == "stream":
        name = raw.get("name") if raw.get("name") in ("stdout", "stderr") else "stdout"
        return nbformat.v4.new_output("stream", name=name, text=_text(raw.get("text")))
    if kind in ("display_data", "execute_result"):
        data = clean_data(raw.get("data"))
        extra = {"execution_count": None} if kind == "execute_result" else {}
        return nbformat.v4.new_output(kind, data=data, **extra)
    if kind == "error":
        traceback = raw.get("traceback") if isinstance(raw.get("traceback"), list) else []
        return error_output(_text(raw.get("ename"))[:200] or "Error", _text(raw.get("evalue")), [_text(line) for line in traceback])
    return nbformat.v4.new_output("stream", name="stdout", text="[an output the grader does not accept was dropped]\n")


def error_output(ename, evalue, traceback=None):
    lines = [line[:ERROR_TEXT_CHARS] for line in (traceback or [f"{ename}: {evalue}"])[-TRACEBACK_LINES:]]
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue[:ERROR_TEXT_CHARS], traceback=lines)


def clean_data(data):
    """{mime type: content} with only inert types, HTML and Markdown sanitised."""
    kept = {}
    for mime, value in (data.items() if isinstance(data, dict) else ()):
        value = _text(value)
        if mime in TEXT_TYPES:
            kept[mime] = value
        elif mime in IMAGE_TYPES and BASE64.fullmatch(value):
            kept[mime] = value
        elif mime == "text/html":
            kept[mime] = sanitise_html(value)
        elif mime == "text/markdown":
            kept[mime] = sanitise_markdown(value)
    if not kept:
        kept["text/plain"] = "[an output of a type the grader does not show was dropped]"
    return kept


def clean_cell(cell, max_source_chars):
    """Make a cell of the submission safe to keep: no attachments, no oversized source, inert markup."""
    notes = []
    if cell.get("attachments"):
        cell.pop("attachments")
        notes.append("its attachments were dropped (the grader does not keep attachments)")
    if len(cell.source) > max_source_chars:
        size = len(cell.source)
        cell.source = "# " if cell.cell_type == "code" else ""
        cell.source += f"[this cell held {size} characters, over the limit of {max_source_chars}: it was dropped]"
        notes = [f"it was dropped: {size} characters"]
    if cell.cell_type == "markdown":
        cell.source = sanitise_markdown(cell.source)
    elif cell.cell_type == "raw":
        cell.source = sanitise_html(cell.source)
    if notes and cell.cell_type != "code":
        cell.source += f"\n\n*[grader: {'; '.join(notes)}]*"
    return notes


def _text(value):
    if isinstance(value, list):
        return "".join(str(part) for part in value)
    return "" if value is None else str(value)
