; Parity case "identical-link", after OpenCog atomspace tests/query/dot-identical-test.scm: IdenticalLink: two variables grounded to the same atom.
;; @data
(Inheritance (Concept "cat") (Concept "mammal"))
(Inheritance (Concept "dog") (Concept "mammal"))
(Inheritance (Concept "mammal") (Concept "animal"))
(Inheritance (Concept "snake") (Concept "reptile"))
(Inheritance (Concept "reptile") (Concept "animal"))
(Inheritance (Concept "loop") (Concept "loop"))
;; @query
(Get (VariableList (Variable "$x") (Variable "$y")) (And (Inheritance (Variable "$x") (Variable "$y")) (Identical (Variable "$x") (Variable "$y"))))
;; @expect
(Set (List (Concept "loop") (Concept "loop")))
