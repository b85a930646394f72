; Parity case "undeclared-constant", after OpenCog atomspace tests/query/BuggySelfGroundUTest: an undeclared VariableNode in a declared query is a constant.
;; @data
(Evaluation (Predicate "likes") (List (Concept "ann") (Concept "tea")))
(Evaluation (Predicate "likes") (List (Concept "bob") (Number "3")))
(Evaluation (Predicate "likes") (List (Concept "cy") (Predicate "p")))
(Evaluation (Predicate "likes") (List (Concept "dee") (List (Concept "x"))))
(Evaluation (Predicate "likes") (List (Variable "$who") (Concept "milk")))
;; @query
(Get (Variable "$what")
  (Evaluation (Predicate "likes") (List (Variable "$who") (Variable "$what"))))
;; @expect
(Set (Concept "milk"))
