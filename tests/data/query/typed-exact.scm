; Parity case "typed-exact", after OpenCog atomspace tests/query/deep-types.scm: TypeNode restricts a variable to one type.
;; @data
(Evaluation (Predicate "likes") (List (Concept "ann") (Concept "tea")))
(Evaluation (Predicate "likes") (List (Concept "bob") (Number "3")))
(Evaluation (Predicate "likes") (List (Concept "cy") (Predicate "p")))
(Evaluation (Predicate "likes") (List (Concept "dee") (List (Concept "x"))))
;; @query
(Get (VariableList (Variable "$who") (TypedVariable (Variable "$what") (Type "ConceptNode")))
  (Evaluation (Predicate "likes") (List (Variable "$who") (Variable "$what"))))
;; @expect
(Set (List (Concept "ann") (Concept "tea")))
