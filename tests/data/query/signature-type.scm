; Parity case "signature-type", after OpenCog atomspace tests/query/signature-test.scm: a SignatureLink (deep type) on a variable.
;; @data
(Inheritance (Concept "cat") (Concept "mammal"))
(Inheritance (Concept "dog") (Concept "mammal"))
(Inheritance (Concept "mammal") (Concept "animal"))
(Inheritance (Concept "snake") (Concept "reptile"))
(Inheritance (Concept "reptile") (Concept "animal"))
;; @query
(Get (TypedVariable (Variable "$l") (Signature (Inheritance (Type "ConceptNode") (Type "ConceptNode")))) (Member (Variable "$l") (Concept "kb")))
;; @refused SignatureLink
