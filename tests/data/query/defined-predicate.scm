; Parity case "defined-predicate", after OpenCog atomspace tests/query/define.scm: an EvaluationLink of a DefinedPredicateNode.
;; @data
(Inheritance (Concept "cat") (Concept "mammal"))
(Inheritance (Concept "dog") (Concept "mammal"))
(Inheritance (Concept "mammal") (Concept "animal"))
(Inheritance (Concept "snake") (Concept "reptile"))
(Inheritance (Concept "reptile") (Concept "animal"))
;; @query
(Get (Variable "$x") (And (Inheritance (Variable "$x") (Concept "mammal")) (Evaluation (DefinedPredicate "is-pet") (List (Variable "$x")))))
;; @refused DefinedPredicateNode
