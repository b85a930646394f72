; Parity case "get-basic", after OpenCog atomspace tests/query/get-link.scm: one clause, one declared variable.
;; @data
(Inheritance (Concept "cat") (Concept "mammal"))
(Inheritance (Concept "dog") (Concept "mammal"))
(Inheritance (Concept "mammal") (Concept "animal"))
(Inheritance (Concept "snake") (Concept "reptile"))
(Inheritance (Concept "reptile") (Concept "animal"))
;; @query
(Get (Variable "$x") (Inheritance (Variable "$x") (Concept "mammal")))
;; @expect
(Set (Concept "cat") (Concept "dog"))
