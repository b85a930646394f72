; Parity case "typed-inh", after OpenCog atomspace tests/query/deep-types.scm: TypeInhNode: a type and its subtypes (every node, no link).
;; @data
(Evaluation (Predicate "likes") (List (Concept "ann") (Concept "tea")))
(Evaluation (Predicate "likes") (List (Concept "bob") (Number "3")))
(Evaluation (Predicate "likes") (List (Concept "cy") (Predicate "p")))
(Evaluation (Predicate "likes") (List (Concept "dee") (List (Concept "x"))))
;; @query
(Get (VariableList (TypedVariable (Variable "$who") (Type "ConceptNode")) (TypedVariable (Variable "$what") (TypeInh "Node")))
  (Evaluation (Predicate "likes") (List (Variable "$who") (Variable "$what"))))
;; @expect
(Set (List (Concept "ann") (Concept "tea")) (List (Concept "bob") (Number "3")) (List (Concept "cy") (Predicate "p")))
