; Parity case "typed-link", after OpenCog atomspace tests/query/deep-types.scm: a variable typed to a link type.
;; @data
(Evaluation (Predicate "likes") (List (Concept "ann") (Concept "tea")))
(Evaluation (Predicate "likes") (List (Concept "bob") (Number "3")))
(Evaluation (Predicate "likes") (List (Concept "cy") (Predicate "p")))
(Evaluation (Predicate "likes") (List (Concept "dee") (List (Concept "x"))))
;; @query
(Get (VariableList (Variable "$who") (TypedVariable (Variable "$what") (Type "ListLink")))
  (Evaluation (Predicate "likes") (List (Variable "$who") (Variable "$what"))))
;; @expect
(Set (List (Concept "dee") (List (Concept "x"))))
