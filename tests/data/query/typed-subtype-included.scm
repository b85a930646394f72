; Parity case "typed-subtype-included", after OpenCog atomspace tests/query/var-type-not.scm: TypeInhNode takes the subtypes in.
;; @data
(Evaluation (Predicate "p") (List (Concept "a")))
(Evaluation (DefinedPredicate "q") (List (Concept "a")))
;; @query
(Get (TypedVariable (Variable "$p") (TypeInh "PredicateNode"))
  (Evaluation (Variable "$p") (List (Concept "a"))))
;; @expect
(Set (Predicate "p") (DefinedPredicate "q"))
