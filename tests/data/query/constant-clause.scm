; Parity case "constant-clause", after OpenCog atomspace tests/query/constant-clauses.scm: a constant clause that holds.
;; @data
(Inheritance (Concept "cat") (Concept "mammal"))
(Inheritance (Concept "dog") (Concept "mammal"))
(Inheritance (Concept "mammal") (Concept "animal"))
(Inheritance (Concept "snake") (Concept "reptile"))
(Inheritance (Concept "reptile") (Concept "animal"))
;; @query
(Get (Variable "$x")
  (And (Inheritance (Variable "$x") (Concept "mammal"))
       (Inheritance (Concept "mammal") (Concept "animal"))))
;; @expect
(Set (Concept "cat") (Concept "dog"))
