; Parity case "bind-conjunction", after OpenCog atomspace tests/query/PatternUTest: a two-clause body, a one-variable rewrite.
;; @data
(Inheritance (Concept "cat") (Concept "mammal"))
(Inheritance (Concept "dog") (Concept "mammal"))
(Inheritance (Concept "mammal") (Concept "animal"))
(Inheritance (Concept "snake") (Concept "reptile"))
(Inheritance (Concept "reptile") (Concept "animal"))
;; @query
(Bind (VariableList (Variable "$x") (Variable "$y"))
  (And (Inheritance (Variable "$x") (Variable "$y"))
       (Inheritance (Variable "$y") (Concept "animal")))
  (Inheritance (Variable "$x") (Concept "animal")))
;; @expect
(Set (Inheritance (Concept "cat") (Concept "animal")) (Inheritance (Concept "dog") (Concept "animal"))
     (Inheritance (Concept "snake") (Concept "animal")))
