; Parity case "unordered-three", after OpenCog atomspace tests/query/unordered-more.scm: three members, two variables and a constant.
;; @data
(Set (Concept "p") (Concept "q") (Concept "r"))
(Set (Concept "p") (Concept "s") (Concept "r"))
;; @query
(Get (VariableList (Variable "$x") (Variable "$y")) (Set (Variable "$x") (Variable "$y") (Concept "q")))
;; @expect
(Set (List (Concept "p") (Concept "r")) (List (Concept "r") (Concept "p")))
