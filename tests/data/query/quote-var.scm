; Parity case "quote-var", after OpenCog atomspace tests/query/quote-var.scm: QuoteLink: a VariableNode matched as itself.
;; @data
(Evaluation (Predicate "similar") (List (Concept "apple") (Concept "banana")))
(Evaluation (Predicate "similar") (List (Concept "orange") (Concept "apple")))
(Evaluation (Predicate "similar") (List (Concept "apple") (Concept "grape")))
(Evaluation (Predicate "similar") (List (Variable "$var-a") (Concept "banana")))
(Evaluation (Predicate "similar") (List (Variable "$wrong-var-a") (Concept "apple")))
;; @query
(Get (TypedVariable (Variable "$var-a") (Type "ConceptNode"))
  (Evaluation (Predicate "similar")
    (List (Quote (Variable "$var-a")) (Variable "$var-a"))))
;; @expect
(Set (Concept "banana"))
