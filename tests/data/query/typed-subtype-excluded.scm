; Parity case "typed-subtype-excluded", after OpenCog atomspace tests/query/var-type-not.scm: an exact type leaves its subtypes out.
;; @data
(Evaluation (Predicate "p") (List (Concept "a")))
(Evaluation (DefinedPredicate "q") (List (Concept "a")))
;; @query
(Get (TypedVariable (Variable "$p") (Type "PredicateNode"))
  (Evaluation (Variable "$p") (List (Concept "a"))))
;; @expect
(Set (Predicate "p"))
