import Foundation
print("prism-bench: no benchmark cases yet")
