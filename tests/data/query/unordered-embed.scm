; Parity case "unordered-embed", after OpenCog atomspace tests/query/unordered-embed.scm: an unordered link inside an ordered one.
;; @data
(Evaluation (Predicate "pair") (Set (Concept "x") (Concept "y")))
(Evaluation (Predicate "pair") (Set (Concept "z") (Concept "w")))
;; @query
(Get (Variable "$v") (Evaluation (Predicate "pair") (Set (Concept "y") (Variable "$v"))))
;; @expect
(Set (Concept "x"))
