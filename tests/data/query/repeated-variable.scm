; Parity case "repeated-variable", after OpenCog atomspace tests/query/PatternUTest: one variable twice in a clause.
;; @data
(List (Concept "a") (Concept "a"))
(List (Concept "a") (Concept "b"))
(List (Concept "c") (Concept "c"))
;; @query
(Get (Variable "$x") (List (Variable "$x") (Variable "$x")))
;; @expect
(Set (Concept "a") (Concept "c"))
