; Parity case "unordered-pair", after OpenCog atomspace tests/query/unordered.scm: an unordered link grounds in both orders.
;; @data
(Similarity (Concept "a") (Concept "b"))
(Similarity (Concept "c") (Concept "d"))
;; @query
(Get (VariableList (Variable "$x") (Variable "$y")) (Similarity (Variable "$x") (Variable "$y")))
;; @expect
(Set (List (Concept "a") (Concept "b")) (List (Concept "b") (Concept "a"))
     (List (Concept "c") (Concept "d")) (List (Concept "d") (Concept "c")))
