; Parity case "type-choice", after OpenCog atomspace tests/query/TypeChoiceUTest: TypeChoice: any of several types.
;; @data
(Evaluation (Predicate "likes") (List (Concept "ann") (Concept "tea")))
(Evaluation (Predicate "likes") (List (Concept "bob") (Number "3")))
(Evaluation (Predicate "likes") (List (Concept "cy") (Predicate "p")))
(Evaluation (Predicate "likes") (List (Concept "dee") (List (Concept "x"))))
;; @query
(Get (VariableList (Variable "$who") (TypedVariable (Variable "$what") (TypeChoice (Type "NumberNode") (Type "PredicateNode"))))
  (Evaluation (Predicate "likes") (List (Variable "$who") (Variable "$what"))))
;; @expect
(Set (List (Concept "bob") (Number "3")) (List (Concept "cy") (Predicate "p")))
