"""Reading CI comments: is the author a CI, and what did its comment say (step 2, after gerrit/).

`CommentParser` turns one `ObservedComment` into a `ParsedComment` (`parser`); `rechecks` reads
humans' recheck comments; `explain` shows an operator how a comment was read, and why.

May import `cidash.config`, `cidash.errors`, `cidash.domain` and `cidash.gerrit`; never the store
or anything after it.
"""

from cidash.parsing.parser import (
    PARSER_VERSION,
    CommentKind,
    CommentParser,
    JobResult,
    ParsedComment,
    parse_duration,
)

__all__ = [
    "PARSER_VERSION",
    "CommentKind",
    "CommentParser",
    "JobResult",
    "ParsedComment",
    "parse_duration",
]
