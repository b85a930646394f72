; Parity case "query-link", after OpenCog atomspace tests/query/QueryUTest / query.scm: QueryLink, OpenCog's current name for BindLink.
;; @data
(Inheritance (Concept "cat") (Concept "mammal"))
(Inheritance (Concept "dog") (Concept "mammal"))
(Inheritance (Concept "mammal") (Concept "animal"))
(Inheritance (Concept "snake") (Concept "reptile"))
(Inheritance (Concept "reptile") (Concept "animal"))
;; @query
(Query (TypedVariable (Variable "$x") (Type "ConceptNode"))
  (Inheritance (Variable "$x") (Concept "reptile"))
  (Inheritance (Variable "$x") (Concept "animal")))
;; @expect
(Set (Inheritance (Concept "snake") (Concept "animal")))
