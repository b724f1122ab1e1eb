{#-
    Do-not-mail entries (the suppression_list seed here; in production, the brand's DNM requests,
    deceased and moved-away files). An entry names a profile, an address, or both; addresses are trimmed
    the same way as the CRM's so that they key and validate alike.
-#}
with

source as (

    select * from {{ ref('suppression_list') }}

),

renamed as (

    select
        lower(trim(list_name)) as list_name,
        nullif(trim(profile_id), '') as profile_id,
        nullif(trim(address_line_1), '') as address_line_1,
        nullif(trim(address_line_2), '') as address_line_2,
        nullif(trim(postal_code), '') as postal_code,
        nullif(trim(city), '') as city,
        nullif(trim(region), '') as region,
        upper(nullif(trim(country_code), '')) as country_code,
        cast(added_at as date) as added_on

    from source

)

select * from renamed
