; Parity case "meet-link", after OpenCog atomspace tests/query/MeetLinkUTest / meet-link.scm: MeetLink, OpenCog's current name for GetLink.
;; @data
(Inheritance (Concept "cat") (Concept "mammal"))
(Inheritance (Concept "dog") (Concept "mammal"))
(Inheritance (Concept "mammal") (Concept "animal"))
(Inheritance (Concept "snake") (Concept "reptile"))
(Inheritance (Concept "reptile") (Concept "animal"))
;; @query
(Meet (VariableList (Variable "$x") (Variable "$y"))
  (And (Inheritance (Variable "$x") (Variable "$y"))
       (Inheritance (Variable "$y") (Concept "animal"))))
;; @expect
(Set (List (Concept "cat") (Concept "mammal")) (List (Concept "dog") (Concept "mammal"))
     (List (Concept "snake") (Concept "reptile")))
