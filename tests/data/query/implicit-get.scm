; Parity case "implicit-get", after OpenCog atomspace tests/query/sat-anonymous.scm: no declaration: the body's free variables.
;; @data
(Inheritance (Concept "cat") (Concept "mammal"))
(Inheritance (Concept "dog") (Concept "mammal"))
(Inheritance (Concept "mammal") (Concept "animal"))
(Inheritance (Concept "snake") (Concept "reptile"))
(Inheritance (Concept "reptile") (Concept "animal"))
;; @query
(Get (Inheritance (Variable "$x") (Concept "mammal")))
;; @expect
(Set (Concept "cat") (Concept "dog"))
