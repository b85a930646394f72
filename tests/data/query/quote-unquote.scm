; Parity case "quote-unquote", after OpenCog atomspace tests/query/UnquoteUTest: a quoted clause with an unquoted variable.
;; @data
(Evaluation (Predicate "similar") (List (Concept "apple") (Concept "banana")))
(Evaluation (Predicate "similar") (List (Concept "orange") (Concept "apple")))
(Evaluation (Predicate "similar") (List (Concept "apple") (Concept "grape")))
(Evaluation (Predicate "similar") (List (Variable "$var-a") (Concept "banana")))
(Evaluation (Predicate "similar") (List (Variable "$wrong-var-a") (Concept "apple")))
;; @query
(Get (Quote (Evaluation (Predicate "similar") (List (Unquote (Variable "$x")) (Concept "banana")))))
;; @expect
(Set (Concept "apple") (Variable "$var-a"))
