; Parity case "equal-link", after OpenCog atomspace tests/query/buggy-equal.scm: EqualLink of a variable and a constant (nothing to execute).
;; @data
(Inheritance (Concept "cat") (Concept "mammal"))
(Inheritance (Concept "dog") (Concept "mammal"))
(Inheritance (Concept "mammal") (Concept "animal"))
(Inheritance (Concept "snake") (Concept "reptile"))
(Inheritance (Concept "reptile") (Concept "animal"))
;; @query
(Get (Variable "$x") (And (Inheritance (Variable "$x") (Concept "mammal")) (Equal (Variable "$x") (Concept "cat"))))
;; @expect
(Set (Concept "cat"))
