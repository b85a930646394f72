; Parity case "unordered-constant", after OpenCog atomspace tests/query/unordered.scm: an unordered clause with a constant, in either position.
;; @data
(Similarity (Concept "a") (Concept "b"))
(Similarity (Concept "c") (Concept "d"))
;; @query
(Get (Variable "$x") (Similarity (Variable "$x") (Concept "a")))
;; @expect
(Set (Concept "b"))
