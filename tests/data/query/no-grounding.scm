; Parity case "no-grounding", after OpenCog atomspace tests/query/NoExceptionUTest: a query with no answer gives the empty set.
;; @data
(Inheritance (Concept "cat") (Concept "mammal"))
(Inheritance (Concept "dog") (Concept "mammal"))
(Inheritance (Concept "mammal") (Concept "animal"))
(Inheritance (Concept "snake") (Concept "reptile"))
(Inheritance (Concept "reptile") (Concept "animal"))
;; @query
(Get (Variable "$x") (Inheritance (Variable "$x") (Concept "cat")))
;; @expect
(Set)
