; Parity case "disconnected", after OpenCog atomspace tests/query/disconnected.scm: clauses sharing no variable: every combination.
;; @data
(Inheritance (Concept "cat") (Concept "mammal"))
(Inheritance (Concept "dog") (Concept "mammal"))
(Inheritance (Concept "mammal") (Concept "animal"))
(Inheritance (Concept "snake") (Concept "reptile"))
(Inheritance (Concept "reptile") (Concept "animal"))
;; @query
(Get (VariableList (Variable "$x") (Variable "$y"))
  (And (Inheritance (Variable "$x") (Concept "reptile"))
       (Inheritance (Variable "$y") (Concept "animal"))))
;; @expect
(Set (List (Concept "snake") (Concept "mammal")) (List (Concept "snake") (Concept "reptile")))
