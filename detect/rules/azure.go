package rules

import "strings"

// Microsoft Azure: storage connection strings and account keys, Entra ID
// (Azure AD) client secrets and shared access signatures.
func azure() []Rule {
	return []Rule{
		{
			ID:          "azure-storage-connection-string",
			Description: "Azure storage (or Service Bus, Event Hubs, Cosmos) connection string with an AccountKey or SharedAccessSignature",
			Category:    CONN,
			Keywords:    []string{"DefaultEndpointsProtocol="},
			Pattern:     `(?i)DefaultEndpointsProtocol=https?(?:;[A-Za-z]+=[^;\s"'\x60<>]*)*?;(?:AccountKey|SharedAccessSignature)=[^;\s"'\x60<>]{20,}(?:;[A-Za-z]+=[^;\s"'\x60<>]*)*`,
			MaxLen:      700,
			Validate:    azureConnValue,
			Positives: []Sample{
				envSample("AZURE_STORAGE_CONNECTION_STRING", "DefaultEndpointsProtocol=https;AccountName=billingprod798;AccountKey=l2oXqmXB8icJlQVSDGDTjbaphXcondQJHkfVs8CRHwHXuc0hbqmkJERhsmyqaykXWG9LCY/6zdj4SQPS/unaiQ==;EndpointSuffix=core.windows.net"),
				jsonSample("AzureWebJobsStorage", "DefaultEndpointsProtocol=https;AccountName=funcstore9og5hk;AccountKey=aCW7rKiPU/tmozjN/tlVz0gUysh2c2RZ/Deq7Rkfj/VDGOCn8dz6RasiHy/tvElc+OVEV31K+JRZC4iHxDO9BA=="),
				textSample("var conn = \"", "DefaultEndpointsProtocol=https;AccountName=media;SharedAccessSignature=sv=2022-11-02&ss=b&srt=sco&sp=rl&se=2027-01-01T00:00:00Z&sig=J2EbTaGHZ8Gsl18GnzDkXW7D4YmkycivT2hCbjQtKix%3D", "\";\n"),
			},
			Negatives: []string{
				"AZURE_STORAGE_CONNECTION_STRING=DefaultEndpointsProtocol=https;AccountName=devstore;AccountKey=<your-account-key>;EndpointSuffix=core.windows.net\n",
				"\"AzureWebJobsStorage\": \"UseDevelopmentStorage=true\"\n",
				"DefaultEndpointsProtocol=https;AccountName=x;AccountKey=${STORAGE_KEY}\n",
			},
		},
		{
			ID:          "azure-storage-account-key",
			Description: "Azure storage account key (88 base64 characters, 64 bytes) after AccountKey= or a storage key name",
			Category:    KEY,
			Keywords:    []string{"accountkey", "storage_key", "storagekey", "storage-key", "storage_account_key", "storageaccountkey", "storage-account-key"},
			Pattern:     named(`accountkey|storage[_-]?(?:account[_-]?)?key`, `[A-Za-z0-9+/]{86}==`, endB64),
			SecretGroup: 1,
			MaxLen:      160,
			Validate:    All(AzureStorageKey, notAzuriteKey),
			Positives: []Sample{
				textSample("DefaultEndpointsProtocol=https;AccountName=logs;AccountKey=", "EzWeytu6+iMiVUZmw3lhrT9FUGN8zsZXagNgNitXv4+LV6eSRes9XwEgPsvXxM1wbI1FAKV90VWbyU0f9rTXOw==", ";EndpointSuffix=core.windows.net\n"),
				envSample("AZURE_STORAGE_KEY", "gBP1voHn2m1rfh6pUbXrzExAuT+OogJBa4SlS2ehpcjIBFl3NO6A8O2yaaM/EF0R6TCtWfw8Bw5UmTV8rpYy2A=="),
				tomlSample("storage_account_key", "DwQvtkPUzxMjaassok8MSjJEvOgr6BMGHln429AUlHczXzA24t/QDNmKFcqx00N6fhOQPvc8O+EMbTeeWb96KQ=="),
			},
			Negatives: []string{
				envSample("AZURE_STORAGE_KEY", "MdoGEoYitDuLbXYs1ec7elIrnEEDy57ofSaSPhcFc+I3hsVKwjFfxjcfcaEKVboqV1dU24todRdLPBpIbnm6mHF1").Text,
				"AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==\n",
				"storage_key = \"${AZURE_STORAGE_KEY}\"\n",
			},
		},
		{
			ID:            "azure-entra-client-secret",
			Description:   "Microsoft Entra ID (Azure AD) application client secret (xxx8Q~…)",
			Category:      SECRET,
			Keywords:      []string{"8Q~", "7Q~"},
			CaseSensitive: true,
			Before:        3,
			Pattern:       `(?:^|[^A-Za-z0-9_~.-])([A-Za-z0-9_~.-]{3}[78]Q~[A-Za-z0-9_~.-]{31,34})(?:[^A-Za-z0-9_~.-]|$)`,
			SecretGroup:   1,
			MaxLen:        40,
			Validate:      MinEntropy(3.5),
			Positives: []Sample{
				envSample("AZURE_CLIENT_SECRET", "TBe8Q~M16TYBDLidfAuo7iC0Ma_Y4VB2s4g5BPyG"),
				jsonSample("ClientSecret", "QAE8Q~qUpiswhHaE.hh5pDrPsdj4ceec5GeJKBhh"),
			},
			Negatives: []string{
				"AZURE_CLIENT_SECRET=abc8Q~xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
				"secret: Yy18Q~TJx7277cuu7v\n",
				"\"value\": \"2re8Q~wqyFJH20ffnAfCFmvplfDSlW1bOcocUFdkkApQgF\"\n",
			},
		},
		{
			ID:          "azure-sas-token",
			Description: "Azure shared access signature: the sig= of a URL or query string that carries sv=",
			Category:    TOKEN,
			Keywords:    []string{"&sig="},
			Before:      300,
			Pattern:     `(?i)sv=\d{4}-\d\d-\d\d&[^\s"'\x60<>]{0,280}?&sig=([A-Za-z0-9%+/]{40,80}(?:%3D|=)?)` + `(?:[^A-Za-z0-9%+/=]|$)`,
			SecretGroup: 1,
			MaxLen:      100,
			Validate:    MinEntropy(4),
			Positives: []Sample{
				textSample("curl -o backup.tar \"https://backups.blob.core.windows.net/nightly/db.tar?sv=2022-11-02&ss=b&srt=o&sp=r&se=2027-03-01T00:00:00Z&st=2026-03-01T00:00:00Z&spr=https&sig=", "QFOtO6JEz4etVfHAli7W%2BQLZA6iaZD5lW1Q4m4fwml%3D", "\"\n"),
				textSample("BLOB_SAS=?sv=2021-06-08&ss=bfqt&srt=sco&sp=rwdlacupitfx&se=2026-12-31T23:59:59Z&spr=https&sig=", "58r3GKONpnSHmUsIRAaO9uW8ZComGkEzDB2269Gb2Tq%3D", "\n"),
			},
			Negatives: []string{
				"url = \"https://x.blob.core.windows.net/c/f?sv=2022-11-02&sp=r&sig=<signature>\"\n",
				"https://example.com/search?q=test&sig=FYsntDk16KPxiaBmSAH7k3r00mI9XeNeNcE1agT2Tg9\n",
			},
		},
		{
			ID:          "azure-openai-api-key",
			Description: "Azure OpenAI (Azure AI services) API key (32 hex) assigned to an Azure OpenAI name",
			Category:    KEY,
			Keywords:    []string{"azure_openai", "azureopenai", "azure-openai"},
			Pattern:     named(`azure[_-]?openai[\w.-]{0,20}?(?:api[_-]?)?key`, `[a-f0-9]{32}`, endAlnum),
			SecretGroup: 1,
			MaxLen:      120,
			Validate:    MinEntropy(3),
			Positives: []Sample{
				k8sEnvSample("AZURE_OPENAI_API_KEY", "f5d363befe0f19c2f45075159a30313e"),
				envSample("AZURE_OPENAI_KEY", "2a1dca0f5a6c143ee8de0303b73e21d7"),
			},
			Negatives: []string{
				"AZURE_OPENAI_API_KEY=<your-azure-openai-key>\n",
				"AZURE_OPENAI_ENDPOINT=https://acme-eastus.openai.azure.com/\n",
				"AZURE_OPENAI_API_KEY=95ee4fd061248ce4ecbd5e7a\n",
			},
		},
	}
}

// azureConnValue checks that the AccountKey or SharedAccessSignature of an
// Azure connection string is a value rather than a placeholder.
func azureConnValue(b []byte) bool {
	s := string(b)
	for _, field := range []string{"accountkey=", "sharedaccesssignature="} {
		if i := strings.Index(strings.ToLower(s), field); i >= 0 {
			v := s[i+len(field):]
			if j := strings.IndexByte(v, ';'); j >= 0 {
				v = v[:j]
			}
			return NotPlaceholder([]byte(v))
		}
	}
	return false
}

// azuriteKey is the storage key that the Azurite emulator and its
// documentation publish for every developer; it protects nothing.
const azuriteKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

func notAzuriteKey(b []byte) bool { return string(b) != azuriteKey }
