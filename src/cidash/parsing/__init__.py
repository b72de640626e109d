"""Reading CI comments: is the author a CI, and what did its comment say (after gerrit/, before store/).

`CommentParser` (`parser`) turns one `ObservedComment` into a `ParsedComment` (`model`): who is a
CI, then what the body says (`report`: headers and start markers; `jobs`: job lines; `rules`: a
CI's own patterns; `words`: result words, durations and the overall-result rule). `rechecks`
reads humans' recheck comments; `explain` shows an operator how a comment was read, and why.

May import `cidash.config`, `cidash.errors`, `cidash.domain` and `cidash.gerrit`; never the store
or anything after it. Outside the package, import from here (the `explain` command and the rule
tester use `cidash.parsing.explain`, the store `cidash.parsing.rechecks.names_of`).
"""

from cidash.parsing.model import PARSER_VERSION, CommentKind, JobResult, ParsedComment
from cidash.parsing.parser import CommentParser
from cidash.parsing.words import parse_duration

__all__ = [
    "PARSER_VERSION",
    "CommentKind",
    "CommentParser",
    "JobResult",
    "ParsedComment",
    "parse_duration",
]
