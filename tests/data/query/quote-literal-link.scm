; Parity case "quote-literal-link", after OpenCog atomspace tests/query/quote-nest.scm: a quoted link holding a VariableNode, one part unquoted.
;; @data
(List (Variable "$z") (Concept "k"))
(List (Concept "z") (Concept "j"))
;; @query
(Get (Variable "$y") (Quote (List (Variable "$z") (Unquote (Variable "$y")))))
;; @expect
(Set (Concept "k"))
