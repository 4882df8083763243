"""The Yeo 2011 7-network parcellation: names, labels and a network masker."""

# Labels of the Yeo et al. (2011) 7-network atlas (``fetch_atlas_yeo_2011(n_networks=7)``);
# nilearn only calls them ``7Networks_1..7``.
YEO7_NETWORKS = {
    "visual": 1,
    "somatomotor": 2,
    "dorsal_attention": 3,
    "ventral_attention": 4,
    "limbic": 5,
    "frontoparietal": 6,
    "default": 7,
}
