; Parity case "implicit-bind", after OpenCog atomspace tests/query/ScopeUTest: no declaration in a BindLink.
;; @data
(Inheritance (Concept "cat") (Concept "mammal"))
(Inheritance (Concept "dog") (Concept "mammal"))
(Inheritance (Concept "mammal") (Concept "animal"))
(Inheritance (Concept "snake") (Concept "reptile"))
(Inheritance (Concept "reptile") (Concept "animal"))
;; @query
(Bind (Inheritance (Variable "$x") (Concept "reptile"))
  (Evaluation (Predicate "cold-blooded") (List (Variable "$x"))))
;; @expect
(Set (Evaluation (Predicate "cold-blooded") (List (Concept "snake"))))
