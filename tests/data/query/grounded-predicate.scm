; Parity case "grounded-predicate", after OpenCog atomspace tests/query/evaluation.scm: an EvaluationLink of a GroundedPredicateNode, evaluated by a callback.
;; @data
(Inheritance (Concept "cat") (Concept "mammal"))
(Inheritance (Concept "dog") (Concept "mammal"))
(Inheritance (Concept "mammal") (Concept "animal"))
(Inheritance (Concept "snake") (Concept "reptile"))
(Inheritance (Concept "reptile") (Concept "animal"))
;; @query
(Get (Variable "$x") (And (Inheritance (Variable "$x") (Concept "mammal")) (Evaluation (GroundedPredicate "scm: truly") (List (Variable "$x")))))
;; @refused GroundedPredicateNode
